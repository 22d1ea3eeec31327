"""The clinician's desk: my patients with their status, the alerts inbox, an alert's detail
and lifecycle (acknowledge, resolve, snooze, with notes), the target catalogue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from ingest_server import db
from ingest_server.api.deps import (
    ClinicianDep,
    ConnectionDep,
    PrincipalDep,
    PurposeDep,
    ReaderDep,
    audit_entry,
)
from ingest_server.api.schemas.alerts import (
    AlertDetail,
    AlertEvent,
    AlertNoteIn,
    LifecycleAlert,
    PatientStatus,
    SnoozeIn,
)
from ingest_server.api.schemas.common import ID_PATTERN, Limit, Offset
from ingest_server.api.schemas.profile import TargetSpec
from ingest_server.auth import access
from ingest_server.auth.errors import Forbidden
from ingest_server.auth.principal import Principal, Role
from ingest_server.profile import alerts, audit, clinical, programmes
from ingest_server.profile.errors import InvalidValue, NotFound
from ingest_server.profile.models import AlertAction, AlertSeverity, AlertStatus, ConsentPurpose

router = APIRouter(tags=["clinician"])

AlertIdPath = Annotated[int, Path(ge=1, le=2**62)]
MAX_SNOOZE = timedelta(days=30)


@router.get("/clinician/patients", response_model=list[PatientStatus])
async def my_patients(
    request: Request,
    principal: ClinicianDep,
    conn: ConnectionDep,
    purpose: PurposeDep = ConsentPurpose.TREATMENT,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[PatientStatus]:
    """The patients I may read now (my care teams, under their consent), worst first: their
    most severe unresolved alert, last reading and adherence to the schedule over 7 days."""
    visible, params = access.visibility(principal, purpose, "p.patient_id")
    async with db.transaction(conn):
        rows = await alerts.patient_statuses(conn, visible, params, limit=limit, offset=offset)
        await audit.record_many(
            conn,
            audit_entry(request, principal, "read patient status", str(purpose)),
            [r.patient_id for r in rows],
        )
        result = []
        for row in rows:
            profile = await clinical.load_patient_profile(conn, row.patient_id)
            schedule = programmes.effective_schedule(profile)
            counts = {
                "blood_pressure_per_week": row.blood_pressure_7d,
                "glucose_per_week": row.glucose_7d,
            }
            result.append(
                PatientStatus(
                    patient_id=row.patient_id,
                    display_name=row.display_name,
                    worst_open_severity=row.worst_open_severity,  # type: ignore[arg-type]
                    open_alerts=row.open_alerts,
                    last_reading_at=row.last_reading_at,
                    adherence_7d=programmes.adherence(schedule, counts),
                    programmes=list(programmes.catalogue().programmes_for(profile)),
                )
            )
    return result


@router.get("/alerts", response_model=list[LifecycleAlert])
async def inbox(
    request: Request,
    principal: ReaderDep,
    conn: ConnectionDep,
    purpose: PurposeDep = ConsentPurpose.TREATMENT,
    status: Annotated[list[AlertStatus] | None, Query(max_length=3)] = None,
    min_severity: AlertSeverity | None = None,
    patient_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    since: Annotated[datetime | None, Query(description="last_seen_at >= since (aware)")] = None,
    include_snoozed: bool = False,
    sort: alerts.InboxSort = alerts.InboxSort.SEVERITY,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[LifecycleAlert]:
    """Alerts of every patient I may read (a patient: their own). Default: open and
    acknowledged, not snoozed, most severe first."""
    if since is not None and since.tzinfo is None:
        raise InvalidValue("since", "since needs a time zone")
    visible, params = access.visibility(principal, purpose, "a.patient_id")
    f = alerts.InboxFilter(
        statuses=tuple(status or (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)),
        min_severity=min_severity,
        patient_id=patient_id,
        since=since,
        include_snoozed=include_snoozed,
        sort=sort,
        descending=order == "desc",
        limit=limit,
        offset=offset,
    )
    async with db.transaction(conn):
        rows = await alerts.inbox(conn, visible, params, f)
        await audit.record_many(
            conn,
            audit_entry(request, principal, "read alerts inbox", str(purpose)),
            [r.patient_id for r in rows],
        )
    return [LifecycleAlert.model_validate(r) for r in rows]


async def _authorize_alert(
    conn: db.Connection,
    request: Request,
    principal: Principal,
    alert_id: int,
    action: str,
    purpose: str,
) -> str:
    """The patient of the alert, when the caller may do ``action`` to it (audited either way)."""
    row = await alerts.get_alert(conn, alert_id)
    if row is None:
        raise NotFound("alert", alert_id)
    try:
        granted = await access.authorize_patient_access(conn, principal, row.patient_id, purpose)
    except Forbidden:
        entry = audit_entry(request, principal, action, purpose, outcome="denied")
        await audit.record(conn, entry, row.patient_id)
        raise
    await audit.record(conn, audit_entry(request, principal, action, granted), row.patient_id)
    return row.patient_id


@router.get("/alerts/{alert_id}", response_model=AlertDetail)
async def alert_detail(
    alert_id: AlertIdPath,
    request: Request,
    principal: PrincipalDep,
    conn: ConnectionDep,
    purpose: PurposeDep = ConsentPurpose.TREATMENT,
) -> AlertDetail:
    """One alert with its lifecycle history (who acknowledged, resolved or snoozed it, notes)."""
    await _authorize_alert(conn, request, principal, alert_id, "read alert", purpose)
    row = await alerts.get_alert(conn, alert_id)
    assert row is not None
    return AlertDetail(
        alert=LifecycleAlert.model_validate(row),
        history=[AlertEvent.model_validate(e) for e in await alerts.alert_events(conn, alert_id)],
    )


async def _transition(
    conn: db.Connection,
    request: Request,
    principal: Principal,
    alert_id: int,
    action: AlertAction,
    note: str | None,
    purpose: str,
    snoozed_until: datetime | None = None,
) -> LifecycleAlert:
    await _authorize_alert(conn, request, principal, alert_id, f"{action} alert", purpose)
    row = await alerts.transition(
        conn, alert_id, action, actor=principal.actor, note=note, snoozed_until=snoozed_until
    )
    return LifecycleAlert.model_validate(row)


@router.post("/alerts/{alert_id}/acknowledge", response_model=LifecycleAlert)
async def acknowledge(
    alert_id: AlertIdPath,
    body: AlertNoteIn,
    request: Request,
    principal: ClinicianDep,
    conn: ConnectionDep,
    purpose: PurposeDep = ConsentPurpose.TREATMENT,
) -> LifecycleAlert:
    """I have seen it and act on it (open -> acknowledged); 409 if it is not open."""
    return await _transition(
        conn, request, principal, alert_id, AlertAction.ACKNOWLEDGE, body.note, purpose
    )


@router.post("/alerts/{alert_id}/resolve", response_model=LifecycleAlert)
async def resolve(
    alert_id: AlertIdPath,
    body: AlertNoteIn,
    request: Request,
    principal: ClinicianDep,
    conn: ConnectionDep,
    purpose: PurposeDep = ConsentPurpose.TREATMENT,
) -> LifecycleAlert:
    """Done (open or acknowledged -> resolved); a new finding raises a new alert."""
    return await _transition(
        conn, request, principal, alert_id, AlertAction.RESOLVE, body.note, purpose
    )


@router.post("/alerts/{alert_id}/snooze", response_model=LifecycleAlert)
async def snooze(
    alert_id: AlertIdPath,
    body: SnoozeIn,
    request: Request,
    principal: ClinicianDep,
    conn: ConnectionDep,
    purpose: PurposeDep = ConsentPurpose.TREATMENT,
) -> LifecycleAlert:
    """Keep it out of the inbox until ``until`` (status unchanged)."""
    now = datetime.now(UTC)
    if not now < body.until <= now + MAX_SNOOZE:
        raise InvalidValue("until", "snooze until a time in the next 30 days")
    return await _transition(
        conn, request, principal, alert_id, AlertAction.SNOOZE, body.note, purpose, body.until
    )


@router.get("/targets/catalogue", response_model=list[TargetSpec])
async def target_catalogue(principal: PrincipalDep) -> list[TargetSpec]:
    """The per-patient targets a clinician can set, with units and allowed ranges."""
    if principal.role not in (Role.CLINICIAN, Role.ADMIN):
        raise Forbidden(f"{principal.actor} asked for the target catalogue")
    return [TargetSpec.model_validate(t) for t in programmes.target_catalogue()]
