"""Care team and consent: organisations, clinicians, who is responsible for whom, and what the
patient has allowed. The access rule built on these lives in ``ingest_server.auth.access``."""

from __future__ import annotations

from datetime import datetime

from ingest_server import db
from ingest_server.db import Connection
from ingest_server.profile.errors import Conflict, NotFound
from ingest_server.profile.models import (
    CareTeamMemberRow,
    ClinicianRow,
    ConsentEventRow,
    ConsentRow,
    GranteeKind,
    OrganisationRow,
)

UPSERT_ORGANISATION = """
INSERT INTO organisations (organisation_id, name) VALUES (%s, %s)
ON CONFLICT (organisation_id) DO UPDATE SET name = EXCLUDED.name
RETURNING organisation_id, name, created_at
"""
GET_ORGANISATION = (
    "SELECT organisation_id, name, created_at FROM organisations WHERE organisation_id = %s"
)
LIST_ORGANISATIONS = """
SELECT organisation_id, name, created_at FROM organisations ORDER BY organisation_id
LIMIT %s OFFSET %s
"""

_CLINICIAN = "clinician_id, display_name, organisation_id, profession, active, created_at"
UPSERT_CLINICIAN = f"""
INSERT INTO clinicians (clinician_id, display_name, organisation_id, profession, active)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (clinician_id) DO UPDATE SET
    display_name = EXCLUDED.display_name, organisation_id = EXCLUDED.organisation_id,
    profession = EXCLUDED.profession, active = EXCLUDED.active
RETURNING {_CLINICIAN}
"""
GET_CLINICIAN = f"SELECT {_CLINICIAN} FROM clinicians WHERE clinician_id = %s"
LIST_CLINICIANS = f"""
SELECT {_CLINICIAN} FROM clinicians
WHERE (%(organisation_id)s::text IS NULL OR organisation_id = %(organisation_id)s::text)
ORDER BY clinician_id LIMIT %(limit)s OFFSET %(offset)s
"""

_MEMBER = """m.member_id, m.patient_id, m.organisation_id, o.name AS organisation_name,
             m.clinician_id, c.display_name AS clinician_name, m.role, m.added_at, m.added_by,
             m.removed_at, m.removed_by"""
CARE_TEAM = f"""
SELECT {_MEMBER}
FROM care_team_members m
JOIN organisations o ON o.organisation_id = m.organisation_id
LEFT JOIN clinicians c ON c.clinician_id = m.clinician_id
WHERE m.patient_id = %(patient_id)s AND (%(history)s OR m.removed_at IS NULL)
ORDER BY m.added_at, m.member_id
"""
ACTIVE_MEMBER = """
SELECT member_id FROM care_team_members
WHERE patient_id = %s AND organisation_id = %s AND coalesce(clinician_id, '') = coalesce(%s, '')
  AND removed_at IS NULL
"""
INSERT_MEMBER = """
INSERT INTO care_team_members (patient_id, organisation_id, clinician_id, role, added_by)
VALUES (%s, %s, %s, %s, %s) RETURNING member_id
"""
GET_MEMBER = f"""
SELECT {_MEMBER}
FROM care_team_members m
JOIN organisations o ON o.organisation_id = m.organisation_id
LEFT JOIN clinicians c ON c.clinician_id = m.clinician_id
WHERE m.member_id = %s
"""
REMOVE_MEMBER = """
UPDATE care_team_members SET removed_at = now(), removed_by = %s
WHERE member_id = %s AND patient_id = %s AND removed_at IS NULL
"""

#: The state of a consent now: revoked wins over expired.
_CONSENT = """consent_id, patient_id, grantee_kind, grantee_id, purpose, granted_at, valid_until,
    granted_by, revoked_at, revoked_by,
    CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
         WHEN valid_until IS NOT NULL AND valid_until <= now() THEN 'expired'
         ELSE 'active' END AS state"""
INSERT_CONSENT = f"""
INSERT INTO consents (patient_id, grantee_kind, grantee_id, purpose, valid_until, granted_by)
VALUES (%s, %s, %s, %s, %s, %s)
RETURNING {_CONSENT}
"""
LIST_CONSENTS = f"""
SELECT {_CONSENT} FROM consents WHERE patient_id = %s ORDER BY granted_at DESC, consent_id DESC
"""
LOCK_CONSENT = (
    f"SELECT {_CONSENT} FROM consents WHERE consent_id = %s AND patient_id = %s FOR UPDATE"
)
REVOKE_CONSENT = f"""
UPDATE consents SET revoked_at = now(), revoked_by = %s WHERE consent_id = %s
RETURNING {_CONSENT}
"""
INSERT_CONSENT_EVENT = "INSERT INTO consent_events (consent_id, event, actor) VALUES (%s, %s, %s)"
CONSENT_EVENTS = """
SELECT e.event_id, e.consent_id, e.event, e.at, e.actor
FROM consent_events e JOIN consents c ON c.consent_id = e.consent_id
WHERE c.patient_id = %s ORDER BY e.at, e.event_id
"""


# --- organisations and clinicians -----------------------------------------------------------------


async def upsert_organisation(conn: Connection, organisation_id: str, name: str) -> OrganisationRow:
    row = await db.fetch_one(conn, UPSERT_ORGANISATION, (organisation_id, name), OrganisationRow)
    assert row is not None
    return row


async def list_organisations(conn: Connection, *, limit: int, offset: int) -> list[OrganisationRow]:
    return await db.fetch_all(conn, LIST_ORGANISATIONS, (limit, offset), OrganisationRow)


async def require_organisation(conn: Connection, organisation_id: str) -> OrganisationRow:
    row = await db.fetch_one(conn, GET_ORGANISATION, (organisation_id,), OrganisationRow)
    if row is None:
        raise NotFound("organisation", organisation_id)
    return row


async def upsert_clinician(
    conn: Connection,
    clinician_id: str,
    *,
    display_name: str,
    organisation_id: str,
    profession: str | None,
    active: bool,
) -> ClinicianRow:
    await require_organisation(conn, organisation_id)
    row = await db.fetch_one(
        conn,
        UPSERT_CLINICIAN,
        (clinician_id, display_name, organisation_id, profession, active),
        ClinicianRow,
    )
    assert row is not None
    return row


async def get_clinician(conn: Connection, clinician_id: str) -> ClinicianRow | None:
    return await db.fetch_one(conn, GET_CLINICIAN, (clinician_id,), ClinicianRow)


async def list_clinicians(
    conn: Connection, *, organisation_id: str | None, limit: int, offset: int
) -> list[ClinicianRow]:
    params = {"organisation_id": organisation_id, "limit": limit, "offset": offset}
    return await db.fetch_all(conn, LIST_CLINICIANS, params, ClinicianRow)


# --- care team ------------------------------------------------------------------------------------


async def care_team(
    conn: Connection, patient_id: str, *, history: bool = False
) -> list[CareTeamMemberRow]:
    params = {"patient_id": patient_id, "history": history}
    return await db.fetch_all(conn, CARE_TEAM, params, CareTeamMemberRow)


async def add_care_team_member(
    conn: Connection,
    patient_id: str,
    *,
    organisation_id: str | None,
    clinician_id: str | None,
    role: str,
    actor: str,
) -> CareTeamMemberRow:
    """Add an organisation (``clinician_id`` None) or a clinician of it to the patient's care
    team; a clinician's organisation is theirs. Adding an active member again is a
    ``Conflict``."""
    if clinician_id is not None:
        clinician = await get_clinician(conn, clinician_id)
        if clinician is None:
            raise NotFound("clinician", clinician_id)
        if organisation_id is not None and organisation_id != clinician.organisation_id:
            raise Conflict(
                f"clinician {clinician_id!r} belongs to {clinician.organisation_id!r}, "
                f"not {organisation_id!r}"
            )
        organisation_id = clinician.organisation_id
    elif organisation_id is None:
        raise Conflict("a care team member is an organisation, a clinician, or both")
    else:
        await require_organisation(conn, organisation_id)
    async with db.transaction(conn):
        existing = await db.fetch_tuples(
            conn, ACTIVE_MEMBER, (patient_id, organisation_id, clinician_id)
        )
        if existing:
            raise Conflict("already an active member of the patient's care team")
        ((member_id,),) = await db.fetch_tuples(
            conn, INSERT_MEMBER, (patient_id, organisation_id, clinician_id, role, actor)
        )
        row = await db.fetch_one(conn, GET_MEMBER, (member_id,), CareTeamMemberRow)
    assert row is not None
    return row


async def remove_care_team_member(
    conn: Connection, patient_id: str, member_id: int, actor: str
) -> CareTeamMemberRow:
    """End a membership (kept in the history); ``NotFound`` unless it is an active one of the
    patient."""
    if await db.execute(conn, REMOVE_MEMBER, (actor, member_id, patient_id)) == 0:
        raise NotFound("active care team member", member_id)
    row = await db.fetch_one(conn, GET_MEMBER, (member_id,), CareTeamMemberRow)
    assert row is not None
    return row


# --- consents -------------------------------------------------------------------------------------


async def grant_consent(
    conn: Connection,
    patient_id: str,
    *,
    grantee_kind: str,
    grantee_id: str,
    purpose: str,
    valid_until: datetime | None,
    actor: str,
) -> ConsentRow:
    if grantee_kind == GranteeKind.CLINICIAN:
        if await get_clinician(conn, grantee_id) is None:
            raise NotFound("clinician", grantee_id)
    else:
        await require_organisation(conn, grantee_id)
    async with db.transaction(conn):
        row = await db.fetch_one(
            conn,
            INSERT_CONSENT,
            (patient_id, grantee_kind, grantee_id, purpose, valid_until, actor),
            ConsentRow,
        )
        assert row is not None
        await db.execute(conn, INSERT_CONSENT_EVENT, (row.consent_id, "granted", actor))
    return row


async def revoke_consent(
    conn: Connection, patient_id: str, consent_id: int, actor: str
) -> ConsentRow:
    """Revoke the patient's consent now; ``Conflict`` when it was revoked already."""
    async with db.transaction(conn):
        row = await db.fetch_one(conn, LOCK_CONSENT, (consent_id, patient_id), ConsentRow)
        if row is None:
            raise NotFound("consent", consent_id)
        if row.revoked_at is not None:
            raise Conflict(f"consent {consent_id} was revoked already")
        revoked = await db.fetch_one(conn, REVOKE_CONSENT, (actor, consent_id), ConsentRow)
        await db.execute(conn, INSERT_CONSENT_EVENT, (consent_id, "revoked", actor))
    assert revoked is not None
    return revoked


async def consents(conn: Connection, patient_id: str) -> list[ConsentRow]:
    return await db.fetch_all(conn, LIST_CONSENTS, (patient_id,), ConsentRow)


async def consent_events(conn: Connection, patient_id: str) -> list[ConsentEventRow]:
    return await db.fetch_all(conn, CONSENT_EVENTS, (patient_id,), ConsentEventRow)
