"""The live stream: server-sent events for new and changed alerts the caller may see.

Polling, not LISTEN/NOTIFY: the ingest path writes alerts without knowing about streams, a poll
of the ``alerts_updated`` index is cheap, and it needs no dedicated connection per process.
Each poll re-applies the access rule, so a revoked or expired consent stops the events at once.
A transaction stamps ``updated_at`` when it starts and may commit later, so every poll looks
back ``live_overlap_s`` and leaves out what it has sent already: delivery is at least once, and
the event id (the change's ``updated_at`` and the alert id) lets a client drop repeats. An
event carries the alert as it is at that poll: changes within one poll interval coalesce. A
stream ends after ``live_max_duration_s``; the client reconnects with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from ingest_server import db
from ingest_server.api.deps import ApiSettingsDep, PoolDep, PurposeDep, ReaderDep, audit_entry
from ingest_server.api.schemas.alerts import LifecycleAlert
from ingest_server.api.settings import ApiSettings
from ingest_server.auth import access
from ingest_server.auth.principal import Principal
from ingest_server.errors import DatabaseError
from ingest_server.profile import alerts, audit
from ingest_server.profile.errors import InvalidValue
from ingest_server.profile.models import ConsentPurpose, LifecycleAlertRow

log = logging.getLogger(__name__)
router = APIRouter(tags=["live"])

#: Most alert changes sent per poll.
BATCH = 500


def event_id(row: LifecycleAlertRow) -> str:
    return f"{row.updated_at.isoformat()}~{row.alert_id}"


def parse_event_id(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value.split("~", 1)[0])
    except ValueError as exc:
        raise InvalidValue("Last-Event-ID", "not an event id of this stream") from exc
    if at.tzinfo is None:
        raise InvalidValue("Last-Event-ID", "not an event id of this stream")
    return at


def format_event(row: LifecycleAlertRow) -> str:
    data = LifecycleAlert.model_validate(row).model_dump_json()
    return f"id: {event_id(row)}\nevent: alert\ndata: {data}\n\n"


@router.get(
    "/alerts/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "alert events"}},
)
async def alert_stream(
    request: Request,
    principal: ReaderDep,
    pool: PoolDep,
    api: ApiSettingsDep,
    purpose: PurposeDep = ConsentPurpose.TREATMENT,
    since: Annotated[
        AwareDatetime | None, Query(description="Also send changes after this time")
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=100)] = None,
) -> StreamingResponse:
    """Events ``alert`` (data: the alert with its lifecycle) for every alert of a patient I may
    see that is raised or changes from now on (or from ``since`` / ``Last-Event-ID``)."""
    now = datetime.now(UTC)
    start = parse_event_id(last_event_id) if last_event_id else since or now
    start = max(start, now - timedelta(days=7))
    return StreamingResponse(
        _events(request, principal, pool, api, str(purpose), start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    request: Request,
    principal: Principal,
    pool: db.Pool,
    api: ApiSettings,
    purpose: str,
    cursor: datetime,
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + api.live_max_duration_s
    overlap = timedelta(seconds=api.live_overlap_s)
    visible, params = access.visibility(principal, purpose, "a.patient_id")
    sent: dict[tuple[int, datetime], None] = {}
    last_write = loop.time()
    yield "retry: 2000\n: connected\n\n"
    while loop.time() < deadline:
        if await request.is_disconnected():
            return
        try:
            async with db.connection(pool) as conn, db.transaction(conn):
                rows = await alerts.changed_since(conn, visible, params, cursor - overlap, BATCH)
                new = [r for r in rows if (r.alert_id, r.updated_at) not in sent]
                entry = audit_entry(request, principal, "stream alerts", purpose)
                await audit.record_many(conn, entry, [r.patient_id for r in new])
        except DatabaseError as exc:
            log.warning("alert stream of %s ends: %s", principal.actor, exc)
            return
        for row in new:
            sent[(row.alert_id, row.updated_at)] = None
            yield format_event(row)
            last_write = loop.time()
        if rows:
            cursor = max(cursor, rows[-1].updated_at)
        horizon = cursor - overlap
        for key in [k for k in sent if k[1] < horizon]:
            del sent[key]
        if loop.time() - last_write >= api.live_keepalive_s:
            yield ": keepalive\n\n"
            last_write = loop.time()
        await asyncio.sleep(api.live_poll_interval_s)
