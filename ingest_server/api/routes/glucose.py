"""Glucose readings of a patient: same query, paging and audit as the blood-pressure readings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from ingest_server import store
from ingest_server.api.deps import ConnectionDep, Grant, PatientGrant
from ingest_server.api.models import GlucoseReading

router = APIRouter(prefix="/patients/{patient_id}/readings/glucose", tags=["readings"])


@router.get("", response_model=list[GlucoseReading])
async def list_glucose_readings(
    grant: Annotated[Grant, PatientGrant("read glucose_readings")],
    conn: ConnectionDep,
    since: Annotated[AwareDatetime | None, Query(description="measured_at >= since")] = None,
    until: Annotated[AwareDatetime | None, Query(description="measured_at < until")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[GlucoseReading]:
    """The patient's glucose readings, newest first; control-solution tests included, flagged."""
    rows = await store.list_glucose_readings(
        conn, grant.patient_id, since=since, until=until, limit=limit
    )
    return [GlucoseReading.from_row(row) for row in rows]
