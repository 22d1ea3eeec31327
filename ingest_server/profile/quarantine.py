"""Quarantine review: what the ingest path set aside, read straight from its table, and the
admin's decision on each row (dismissed, or re-ingested once the cause is fixed, e.g. the
device is now bound)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pydantic

from homewatch import wire
from ingest_server import db, store
from ingest_server.db import Connection
from ingest_server.profile.errors import Conflict, NotFound

_ROW = """q.id, q.received_at, q.topic, q.reason, q.detail, q.reading_id, length(q.payload) AS size,
          r.decision, r.note AS review_note, r.reviewed_by, r.reviewed_at"""
LIST = f"""
SELECT {_ROW}
FROM quarantine q LEFT JOIN quarantine_reviews r ON r.quarantine_id = q.id
WHERE (%(reason)s::text IS NULL OR q.reason = %(reason)s::text)
  AND (%(reviewed)s::boolean IS NULL OR (r.quarantine_id IS NOT NULL) = %(reviewed)s::boolean)
ORDER BY q.received_at DESC, q.id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""
GET = f"""
SELECT {_ROW}
FROM quarantine q LEFT JOIN quarantine_reviews r ON r.quarantine_id = q.id
WHERE q.id = %s
"""
PAYLOAD = "SELECT topic, payload FROM quarantine WHERE id = %s"
#: Serialises reviews of one row (two admins re-ingesting it at once).
LOCK_ROW = "SELECT id FROM quarantine WHERE id = %s FOR UPDATE"
INSERT_REVIEW = """
INSERT INTO quarantine_reviews (quarantine_id, decision, note, reviewed_by) VALUES (%s, %s, %s, %s)
ON CONFLICT (quarantine_id) DO NOTHING
"""


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str | None
    reading_id: object | None
    size: int
    decision: str | None
    review_note: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None


async def list_quarantine(
    conn: Connection, *, reason: str | None, reviewed: bool | None, limit: int, offset: int
) -> list[QuarantineRow]:
    params = {"reason": reason, "reviewed": reviewed, "limit": limit, "offset": offset}
    return await db.fetch_all(conn, LIST, params, QuarantineRow)


async def get(conn: Connection, quarantine_id: int) -> tuple[QuarantineRow, bytes]:
    row = await db.fetch_one(conn, GET, (quarantine_id,), QuarantineRow)
    if row is None:
        raise NotFound("quarantined message", quarantine_id)
    ((_, payload),) = await db.fetch_tuples(conn, PAYLOAD, (quarantine_id,))
    return row, bytes(payload)


@dataclass(frozen=True, slots=True)
class ReingestResult:
    stored: int
    duplicates: int
    quarantined: int


async def review(
    conn: Connection, quarantine_id: int, *, decision: str, note: str | None, actor: str
) -> tuple[QuarantineRow, ReingestResult | None]:
    """Record the decision (once per row: ``Conflict`` when reviewed already). "reingested"
    runs the payload through the ingest path again: readings that still cannot be stored
    (device still unbound) stay quarantined and the review is refused."""
    async with db.transaction(conn):
        if not await db.fetch_tuples(conn, LOCK_ROW, (quarantine_id,)):
            raise NotFound("quarantined message", quarantine_id)
        row, payload = await get(conn, quarantine_id)
        if row.decision is not None:
            raise Conflict(f"quarantined message {quarantine_id} was reviewed already")
        result = None
        if decision == "reingested":
            result = await _reingest(conn, row, payload)
        await db.execute(conn, INSERT_REVIEW, (quarantine_id, decision, note, actor))
        reviewed, _ = await get(conn, quarantine_id)
    return reviewed, result


async def _reingest(conn: Connection, row: QuarantineRow, payload: bytes) -> ReingestResult:
    try:
        message = wire.ReadingsMessage.from_bytes(payload)
    except pydantic.ValidationError as exc:
        raise Conflict(
            f"the payload is not a valid readings message: {type(exc).__name__}"
        ) from exc
    result = await store.store_message(conn, message, row.topic)
    if result.stored + result.duplicates < len(message.readings):
        raise Conflict(
            f"{len(message.readings) - result.stored - result.duplicates} reading(s) still "
            f"cannot be stored ({result.quarantine_reason})"
        )
    return ReingestResult(result.stored, result.duplicates, result.quarantined)
