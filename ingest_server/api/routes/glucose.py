"""Glucose readings of a patient: same query, paging and audit as the blood-pressure readings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime

from ingest_server import db, store
from ingest_server.api.deps import ConnectionDep, audit_patient_read
from ingest_server.api.models import GlucoseReading

router = APIRouter(prefix="/patients/{patient_id}/readings/glucose", tags=["readings"])


@router.get("", response_model=list[GlucoseReading])
async def list_glucose_readings(
    patient_id: str,
    request: Request,
    conn: ConnectionDep,
    since: Annotated[AwareDatetime | None, Query(description="measured_at >= since")] = None,
    until: Annotated[AwareDatetime | None, Query(description="measured_at < until")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[GlucoseReading]:
    """The patient's glucose readings, newest first; control-solution tests included, flagged."""
    async with db.transaction(conn):
        await audit_patient_read(conn, request, patient_id, "read glucose_readings")
        rows = await store.list_glucose_readings(
            conn, patient_id, since=since, until=until, limit=limit
        )
    return [GlucoseReading.from_row(row) for row in rows]
