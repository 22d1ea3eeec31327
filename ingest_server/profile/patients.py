"""Patients: identity (identifiers with their systems), demographics, contacts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ingest_server import db
from ingest_server.db import Connection
from ingest_server.profile.errors import Conflict, NotFound
from ingest_server.profile.models import ContactRow, IdentifierRow, PatientRow

_PATIENT_COLUMNS = """patient_id, display_name, given_name, family_name, birth_date, gender,
                      timezone, created_at, updated_at"""

UPSERT_PATIENT = f"""
INSERT INTO patients (patient_id, display_name, given_name, family_name, birth_date, gender,
                      timezone)
VALUES (%(patient_id)s, %(display_name)s, %(given_name)s, %(family_name)s, %(birth_date)s,
        %(gender)s, %(timezone)s)
ON CONFLICT (patient_id) DO UPDATE SET
    display_name = EXCLUDED.display_name, given_name = EXCLUDED.given_name,
    family_name = EXCLUDED.family_name, birth_date = EXCLUDED.birth_date,
    gender = EXCLUDED.gender, timezone = EXCLUDED.timezone, updated_at = now()
RETURNING {_PATIENT_COLUMNS}
"""

GET_PATIENT = f"SELECT {_PATIENT_COLUMNS} FROM patients WHERE patient_id = %s"

LIST_PATIENTS = f"""
SELECT {_PATIENT_COLUMNS} FROM patients ORDER BY patient_id LIMIT %s OFFSET %s
"""

LIST_IDENTIFIERS = """
SELECT identifier_id, system, value, assigner FROM patient_identifiers
WHERE patient_id = %s ORDER BY system, value
"""

INSERT_IDENTIFIER = """
INSERT INTO patient_identifiers (patient_id, system, value, assigner) VALUES (%s, %s, %s, %s)
ON CONFLICT (system, value) DO NOTHING
RETURNING identifier_id, system, value, assigner
"""

IDENTIFIER_OWNER = "SELECT patient_id FROM patient_identifiers WHERE system = %s AND value = %s"

LIST_CONTACTS = """
SELECT contact_id, kind, value, use, name, relationship FROM patient_contacts
WHERE patient_id = %s ORDER BY contact_id
"""

INSERT_CONTACT = """
INSERT INTO patient_contacts (patient_id, kind, value, use, name, relationship)
VALUES (%s, %s, %s, %s, %s, %s)
RETURNING contact_id, kind, value, use, name, relationship
"""

DELETE_CONTACTS = "DELETE FROM patient_contacts WHERE patient_id = %s"


@dataclass(frozen=True, slots=True)
class Demographics:
    display_name: str
    given_name: str | None = None
    family_name: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class NewIdentifier:
    system: str
    value: str
    assigner: str | None = None


@dataclass(frozen=True, slots=True)
class NewContact:
    kind: str
    value: str
    use: str = "home"
    name: str | None = None
    relationship: str | None = None


async def upsert_patient(
    conn: Connection, patient_id: str, demographics: Demographics
) -> PatientRow:
    """Create the patient or replace their demographics."""
    params = {"patient_id": patient_id, **_as_dict(demographics)}
    row = await db.fetch_one(conn, UPSERT_PATIENT, params, PatientRow)
    assert row is not None
    return row


def _as_dict(d: Demographics) -> dict[str, object]:
    return {
        "display_name": d.display_name,
        "given_name": d.given_name,
        "family_name": d.family_name,
        "birth_date": d.birth_date,
        "gender": d.gender,
        "timezone": d.timezone,
    }


async def get_patient(conn: Connection, patient_id: str) -> PatientRow | None:
    return await db.fetch_one(conn, GET_PATIENT, (patient_id,), PatientRow)


async def require_patient(conn: Connection, patient_id: str) -> PatientRow:
    row = await get_patient(conn, patient_id)
    if row is None:
        raise NotFound("patient", patient_id)
    return row


async def list_patients(conn: Connection, *, limit: int, offset: int) -> list[PatientRow]:
    return await db.fetch_all(conn, LIST_PATIENTS, (limit, offset), PatientRow)


async def identifiers(conn: Connection, patient_id: str) -> list[IdentifierRow]:
    return await db.fetch_all(conn, LIST_IDENTIFIERS, (patient_id,), IdentifierRow)


async def add_identifier(conn: Connection, patient_id: str, new: NewIdentifier) -> IdentifierRow:
    """Give the patient an identifier; ``Conflict`` when it names another patient already."""
    row = await db.fetch_one(
        conn, INSERT_IDENTIFIER, (patient_id, new.system, new.value, new.assigner), IdentifierRow
    )
    if row is not None:
        return row
    owner = await db.fetch_tuples(conn, IDENTIFIER_OWNER, (new.system, new.value))
    if owner and owner[0][0] == patient_id:
        existing = [i for i in await identifiers(conn, patient_id) if i.value == new.value]
        return next(i for i in existing if i.system == new.system)
    raise Conflict(f"identifier {new.system} {new.value!r} belongs to another patient")


async def contacts(conn: Connection, patient_id: str) -> list[ContactRow]:
    return await db.fetch_all(conn, LIST_CONTACTS, (patient_id,), ContactRow)


async def replace_contacts(
    conn: Connection, patient_id: str, new: list[NewContact]
) -> list[ContactRow]:
    """The patient's contacts become ``new`` (call inside a transaction)."""
    await db.execute(conn, DELETE_CONTACTS, (patient_id,))
    rows = []
    for c in new:
        row = await db.fetch_one(
            conn,
            INSERT_CONTACT,
            (patient_id, c.kind, c.value, c.use, c.name, c.relationship),
            ContactRow,
        )
        assert row is not None
        rows.append(row)
    return rows
