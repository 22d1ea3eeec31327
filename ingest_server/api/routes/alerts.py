from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ingest_server import store
from ingest_server.api.deps import ConnectionDep, Grant, PatientGrant
from ingest_server.api.models import Alert, AlertStatus

router = APIRouter(prefix="/patients/{patient_id}/alerts", tags=["alerts"])


@router.get("", response_model=list[Alert])
async def list_alerts(
    grant: Annotated[Grant, PatientGrant("read alerts")],
    conn: ConnectionDep,
    status: Annotated[AlertStatus | None, Query()] = None,
) -> list[Alert]:
    """The patient's alerts, most recently seen first (the lifecycle of each: ``GET
    /alerts/{alert_id}``)."""
    rows = await store.list_alerts(conn, grant.patient_id, status=status)
    return [Alert.from_row(row) for row in rows]
