from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime

from ingest_server import db, store
from ingest_server.api.deps import ConnectionDep, audit_patient_read
from ingest_server.api.models import Reading

router = APIRouter(prefix="/patients/{patient_id}/readings", tags=["readings"])


@router.get("", response_model=list[Reading])
async def list_readings(
    patient_id: str,
    request: Request,
    conn: ConnectionDep,
    since: Annotated[AwareDatetime | None, Query(description="measured_at >= since")] = None,
    until: Annotated[AwareDatetime | None, Query(description="measured_at < until")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Reading]:
    """The patient's blood-pressure readings, newest first."""
    async with db.transaction(conn):
        await audit_patient_read(conn, request, patient_id, "read bp_readings")
        rows = await store.list_readings(conn, patient_id, since=since, until=until, limit=limit)
    return [Reading.from_row(row) for row in rows]
