from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from ingest_server import store
from ingest_server.api.deps import ConnectionDep, Grant, PatientGrant
from ingest_server.api.models import Reading

router = APIRouter(prefix="/patients/{patient_id}/readings", tags=["readings"])


@router.get("", response_model=list[Reading])
async def list_readings(
    grant: Annotated[Grant, PatientGrant("read bp_readings")],
    conn: ConnectionDep,
    since: Annotated[AwareDatetime | None, Query(description="measured_at >= since")] = None,
    until: Annotated[AwareDatetime | None, Query(description="measured_at < until")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Reading]:
    """The patient's blood-pressure readings, newest first."""
    rows = await store.list_readings(conn, grant.patient_id, since=since, until=until, limit=limit)
    return [Reading.from_row(row) for row in rows]
