"""The audit trail of personal health data: every read and change, allowed or refused.

Append-only (triggers of migration 0001 refuse UPDATE, DELETE and TRUNCATE). A row says who
(``actor`` = role:subject, and ``role``), what (``action`` and the ``resource`` path), when
(``at``), why (``purpose``: the consent purpose the access was granted under, "own data", or
"administration"), from where (``client_address``), and whether it was ``allowed``. Write it in
the transaction that reads, so no data leaves without its row; a refusal is written on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ingest_server import db
from ingest_server.db import Connection

INSERT = """
INSERT INTO access_log (actor, role, action, resource, patient_id, purpose, client_address, outcome)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""

INSERT_MANY = """
INSERT INTO access_log (actor, role, action, resource, patient_id, purpose, client_address, outcome)
SELECT %s, %s, %s, %s, p, %s, %s, %s FROM unnest(%s::text[]) AS p
"""

QUERY = """
SELECT id, at, actor, role, action, resource, patient_id, purpose, client_address, outcome
FROM access_log
WHERE (%(patient_id)s::text IS NULL OR patient_id = %(patient_id)s::text)
  AND (%(actor)s::text IS NULL OR actor = %(actor)s::text)
  AND (%(outcome)s::text IS NULL OR outcome = %(outcome)s::text)
  AND (%(since)s::timestamptz IS NULL OR at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR at < %(until)s::timestamptz)
ORDER BY at DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    role: str | None
    action: str
    resource: str | None
    purpose: str | None
    client_address: str | None
    outcome: str = "allowed"


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    role: str | None
    action: str
    resource: str | None
    patient_id: str | None
    purpose: str | None
    client_address: str | None
    outcome: str


async def record(conn: Connection, entry: AuditEntry, patient_id: str | None) -> None:
    await db.execute(
        conn,
        INSERT,
        (
            entry.actor,
            entry.role,
            entry.action,
            entry.resource,
            patient_id,
            entry.purpose,
            entry.client_address,
            entry.outcome,
        ),
    )


async def record_many(conn: Connection, entry: AuditEntry, patient_ids: list[str]) -> None:
    """One row per patient (a list or an inbox shows several patients' data at once)."""
    if not patient_ids:
        return
    await db.execute(
        conn,
        INSERT_MANY,
        (
            entry.actor,
            entry.role,
            entry.action,
            entry.resource,
            entry.purpose,
            entry.client_address,
            entry.outcome,
            sorted(set(patient_ids)),
        ),
    )


async def query(
    conn: Connection,
    *,
    patient_id: str | None = None,
    actor: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditRow]:
    params = {
        "patient_id": patient_id,
        "actor": actor,
        "outcome": outcome,
        "since": since,
        "until": until,
        "limit": limit,
        "offset": offset,
    }
    return await db.fetch_all(conn, QUERY, params, AuditRow)
