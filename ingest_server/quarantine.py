"""Operating the quarantine: list what was set aside, and ingest it again after a fix.

Everything the consumer could not store is in the ``quarantine`` table, byte-exact, with its
reason: whole messages (garbage, unknown schema, a gateway publishing under another's topic) and
single readings, each kept as a one-reading message (impossible value, unbound device, older than
the retention). Once the cause is fixed — typically a device bound to its patient — ``reingest``
runs the kept messages through the same write path as live traffic (same duplicate handling,
same patient resolution at ``measured_at``, same rules) and marks each row it resolved. Rows are
kept for the audit; a row that still cannot be stored stays open with the latest outcome.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from homewatch import wire
from ingest_server import batch_store, db
from ingest_server.batching import incoming
from ingest_server.db import Connection
from ingest_server.results import StoreResult

log = logging.getLogger(__name__)

LIST = """
SELECT id, received_at, topic, reason, detail, reading_id, octet_length(payload) AS payload_bytes,
       attempts, last_attempt_at, last_outcome, resolved_at, resolution
FROM quarantine
WHERE (%(reason)s::text IS NULL OR reason = %(reason)s::text)
  AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR received_at < %(until)s::timestamptz)
  AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
  AND (%(include_resolved)s OR resolved_at IS NULL)
ORDER BY received_at, id
LIMIT %(limit)s
"""

COUNTS = """
SELECT reason, count(*) AS open, min(received_at) AS oldest, max(received_at) AS newest
FROM quarantine WHERE resolved_at IS NULL GROUP BY reason ORDER BY reason
"""

LOCK_OPEN = """
SELECT id, topic, payload, reading_id
FROM quarantine
WHERE resolved_at IS NULL
  AND (%(reason)s::text IS NULL OR reason = %(reason)s::text)
  AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR received_at < %(until)s::timestamptz)
  AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
ORDER BY received_at, id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""

RECORD = """
UPDATE quarantine SET attempts = attempts + 1, last_attempt_at = now(), last_outcome = %s,
                      resolved_at = CASE WHEN %s THEN now() END,
                      resolution = CASE WHEN %s THEN %s END
WHERE id = %s
"""


@dataclass(frozen=True, slots=True)
class QuarantinedMessage:
    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str | None
    #: Set when the row holds one reading set aside (its payload is a one-reading message).
    reading_id: uuid.UUID | None
    payload_bytes: int
    attempts: int
    last_attempt_at: datetime | None
    last_outcome: str | None
    resolved_at: datetime | None
    resolution: str | None


@dataclass(frozen=True, slots=True)
class ReasonCount:
    reason: str
    open: int
    oldest: datetime
    newest: datetime


@dataclass(frozen=True, slots=True)
class ReingestOutcome:
    """What one quarantined row became."""

    id: int
    resolved: bool
    #: e.g. "stored 1", "stored 3, duplicates 1", "unbound device: ...", "still invalid: ..."
    outcome: str
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    alerts: int = 0


def _filters(
    reason: str | None,
    since: datetime | None,
    until: datetime | None,
    ids: Sequence[int] | None,
    limit: int,
) -> dict[str, object]:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    return {
        "reason": reason,
        "since": since,
        "until": until,
        "ids": list(ids) if ids else None,
        "limit": limit,
    }


async def list_quarantined(
    conn: Connection,
    *,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    ids: Sequence[int] | None = None,
    include_resolved: bool = False,
    limit: int = 100,
) -> list[QuarantinedMessage]:
    """Quarantined rows, oldest first: open ones only unless ``include_resolved``; by reason
    (exact, e.g. "unbound device") and receive time ``since <= received_at < until``."""
    params = {**_filters(reason, since, until, ids, limit), "include_resolved": include_resolved}
    return await db.fetch_all(conn, LIST, params, QuarantinedMessage)


async def open_counts(conn: Connection) -> list[ReasonCount]:
    """Open rows per reason."""
    return await db.fetch_all(conn, COUNTS, None, ReasonCount)


async def reingest(
    conn: Connection,
    *,
    topic_root: str = wire.TOPIC_ROOT,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    ids: Sequence[int] | None = None,
    limit: int = 1000,
) -> list[ReingestOutcome]:
    """Ingest open quarantined rows again (selected as ``list_quarantined`` selects them), in
    one transaction; rows another re-ingest holds are skipped. A row is resolved when what it held
    is now stored or was already stored (a message whose other readings are set aside again gets
    a row per reading; the message's row is resolved)."""
    async with db.transaction(conn):
        rows = await db.fetch_tuples(conn, LOCK_OPEN, _filters(reason, since, until, ids, limit))
        items = [incoming(topic, bytes(payload), topic_root) for _, topic, payload, _ in rows]
        parsed = [i for i in items if i.message is not None]
        results = iter(await batch_store.store_batch(conn, parsed) if parsed else [])
        outcomes = []
        for (row_id, _, _, reading_id), item in zip(rows, items, strict=True):
            outcome = _outcome(row_id, reading_id, item, next(results) if item.message else None)
            await db.execute(
                conn,
                RECORD,
                (outcome.outcome, outcome.resolved, outcome.resolved, outcome.outcome, row_id),
            )
            outcomes.append(outcome)
    resolved = sum(o.resolved for o in outcomes)
    log.info("re-ingested %d quarantined rows: %d resolved", len(outcomes), resolved)
    return outcomes


def _outcome(
    row_id: int,
    reading_id: uuid.UUID | None,
    item: batch_store.Incoming,
    result: StoreResult | None,
) -> ReingestOutcome:
    if result is None:
        assert item.invalid is not None
        return ReingestOutcome(
            row_id, False, f"still invalid: {item.invalid.reason}: {item.invalid.detail}"
        )
    parts = [f"stored {result.stored}"]
    if result.duplicates:
        parts.append(f"duplicates {result.duplicates}")
    if result.quarantined:
        parts.append(f"set aside {result.quarantined}: {result.quarantine_detail}")
    # A row of one reading that is set aside again stays open (its row is the one kept); a
    # whole message is resolved once its readings are stored or have rows of their own.
    resolved = not result.quarantined or reading_id is None
    return ReingestOutcome(
        row_id,
        resolved,
        ", ".join(parts),
        stored=result.stored,
        duplicates=result.duplicates,
        quarantined=result.quarantined,
        alerts=len(result.alerts),
    )
