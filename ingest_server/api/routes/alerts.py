from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from ingest_server import db, store
from ingest_server.api.deps import ConnectionDep, audit_patient_read
from ingest_server.api.models import Alert, AlertStatus

router = APIRouter(prefix="/patients/{patient_id}/alerts", tags=["alerts"])


@router.get("", response_model=list[Alert])
async def list_alerts(
    patient_id: str,
    request: Request,
    conn: ConnectionDep,
    status: Annotated[AlertStatus | None, Query()] = None,
) -> list[Alert]:
    """The patient's alerts, most recently seen first."""
    async with db.transaction(conn):
        await audit_patient_read(conn, request, patient_id, "read alerts")
        rows = await store.list_alerts(conn, patient_id, status=status)
    return [Alert.from_row(row) for row in rows]
