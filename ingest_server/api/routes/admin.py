"""Admin: organisations, clinicians, patients and their care teams, login users, the audit
trail, quarantine review and webhooks. Admins manage; they do not read health data."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import AwareDatetime

from ingest_server import db
from ingest_server.api.deps import AdminDep, ConnectionDep, audit_admin
from ingest_server.api.schemas import admin as a
from ingest_server.api.schemas import profile as m
from ingest_server.api.schemas.common import ID_PATTERN, Limit, Offset, PatientIdPath
from ingest_server.notify import webhooks
from ingest_server.profile import audit, care, patients, quarantine, users

router = APIRouter(prefix="/admin", tags=["admin"])

IdPath = Annotated[str, Path(pattern=ID_PATTERN)]
RowIdPath = Annotated[int, Path(ge=1, le=2**62)]
#: Most payload bytes a quarantine detail shows.
PAYLOAD_PREVIEW_BYTES = 16 * 1024


# --- organisations and clinicians -----------------------------------------------------------------


@router.put("/organisations/{organisation_id}", response_model=a.Organisation)
async def put_organisation(
    organisation_id: IdPath, body: a.OrganisationIn, _: AdminDep, conn: ConnectionDep
) -> a.Organisation:
    row = await care.upsert_organisation(conn, organisation_id, body.name)
    return a.Organisation.model_validate(row)


@router.get("/organisations", response_model=list[a.Organisation])
async def list_organisations(
    _: AdminDep, conn: ConnectionDep, limit: Limit = 100, offset: Offset = 0
) -> list[a.Organisation]:
    rows = await care.list_organisations(conn, limit=limit, offset=offset)
    return [a.Organisation.model_validate(r) for r in rows]


@router.put("/clinicians/{clinician_id}", response_model=a.Clinician)
async def put_clinician(
    clinician_id: IdPath, body: a.ClinicianIn, _: AdminDep, conn: ConnectionDep
) -> a.Clinician:
    """Create or update a clinician (``active: false`` ends all their access at once)."""
    row = await care.upsert_clinician(
        conn,
        clinician_id,
        display_name=body.display_name,
        organisation_id=body.organisation_id,
        profession=body.profession,
        active=body.active,
    )
    return a.Clinician.model_validate(row)


@router.get("/clinicians", response_model=list[a.Clinician])
async def list_clinicians(
    _: AdminDep,
    conn: ConnectionDep,
    organisation_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[a.Clinician]:
    rows = await care.list_clinicians(
        conn, organisation_id=organisation_id, limit=limit, offset=offset
    )
    return [a.Clinician.model_validate(r) for r in rows]


# --- patients and care teams ----------------------------------------------------------------------


@router.put("/patients/{patient_id}", response_model=m.Demographics)
async def put_patient(
    patient_id: PatientIdPath,
    body: m.PatientIn,
    request: Request,
    principal: AdminDep,
    conn: ConnectionDep,
) -> m.Demographics:
    """Register a patient, or replace their demographics and contacts; identifiers are added
    (409 when one names another patient)."""
    async with db.transaction(conn):
        row = await patients.upsert_patient(
            conn,
            patient_id,
            patients.Demographics(
                display_name=body.display_name,
                given_name=body.given_name,
                family_name=body.family_name,
                birth_date=body.birth_date,
                gender=body.gender,
                timezone=body.timezone,
            ),
        )
        for ident in body.identifiers:
            await patients.add_identifier(
                conn, patient_id, patients.NewIdentifier(ident.system, ident.value, ident.assigner)
            )
        await patients.replace_contacts(
            conn,
            patient_id,
            [
                patients.NewContact(c.kind, c.value, c.use, c.name, c.relationship)
                for c in body.contacts
            ],
        )
        await audit_admin(conn, request, principal, "register patient", patient_id)
    return m.Demographics.model_validate(row)


@router.get("/patients", response_model=list[m.PatientSummary])
async def list_patients(
    _: AdminDep, conn: ConnectionDep, limit: Limit = 100, offset: Offset = 0
) -> list[m.PatientSummary]:
    """Ids and names only: what an admin needs to manage care teams and devices."""
    rows = await patients.list_patients(conn, limit=limit, offset=offset)
    return [m.PatientSummary.model_validate(r) for r in rows]


@router.get("/patients/{patient_id}/care-team", response_model=list[m.CareTeamMember])
async def get_care_team(
    patient_id: PatientIdPath, _: AdminDep, conn: ConnectionDep
) -> list[m.CareTeamMember]:
    """The care team with its history."""
    await patients.require_patient(conn, patient_id)
    rows = await care.care_team(conn, patient_id, history=True)
    return [m.CareTeamMember.model_validate(r) for r in rows]


@router.post(
    "/patients/{patient_id}/care-team",
    response_model=m.CareTeamMember,
    status_code=status.HTTP_201_CREATED,
)
async def add_care_team_member(
    patient_id: PatientIdPath,
    body: m.CareTeamMemberIn,
    request: Request,
    principal: AdminDep,
    conn: ConnectionDep,
) -> m.CareTeamMember:
    await patients.require_patient(conn, patient_id)
    row = await care.add_care_team_member(
        conn,
        patient_id,
        organisation_id=body.organisation_id,
        clinician_id=body.clinician_id,
        role=body.role,
        actor=principal.actor,
    )
    await audit_admin(conn, request, principal, "add care team member", patient_id)
    return m.CareTeamMember.model_validate(row)


@router.delete("/patients/{patient_id}/care-team/{member_id}", response_model=m.CareTeamMember)
async def remove_care_team_member(
    patient_id: PatientIdPath,
    member_id: RowIdPath,
    request: Request,
    principal: AdminDep,
    conn: ConnectionDep,
) -> m.CareTeamMember:
    """End a membership (kept in the history); the clinician's access ends with it."""
    row = await care.remove_care_team_member(conn, patient_id, member_id, principal.actor)
    await audit_admin(conn, request, principal, "remove care team member", patient_id)
    return m.CareTeamMember.model_validate(row)


# --- login users ----------------------------------------------------------------------------------


@router.put("/users", response_model=a.User)
async def put_user(body: a.UserIn, _: AdminDep, conn: ConnectionDep) -> a.User:
    """Create a login of the server's own (or reset its password, role and subject)."""
    row = await users.upsert_user(
        conn, body.username, body.password, role=body.role, subject=body.subject
    )
    return a.User.model_validate(row)


@router.get("/users", response_model=list[a.User])
async def list_users(
    _: AdminDep, conn: ConnectionDep, limit: Limit = 100, offset: Offset = 0
) -> list[a.User]:
    return [
        a.User.model_validate(r) for r in await users.list_users(conn, limit=limit, offset=offset)
    ]


# --- audit ----------------------------------------------------------------------------------------


@router.get("/audit", response_model=list[a.AuditRow])
async def query_audit(
    request: Request,
    principal: AdminDep,
    conn: ConnectionDep,
    patient_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    actor: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")] = None,
    outcome: Literal["allowed", "denied"] | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[a.AuditRow]:
    """Who read or changed which patient's data, when, why and from where; newest first.
    Reading the audit trail is itself audited."""
    rows = await audit.query(
        conn,
        patient_id=patient_id,
        actor=actor,
        outcome=outcome,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    await audit_admin(conn, request, principal, "read audit trail", patient_id)
    return [a.AuditRow.model_validate(r) for r in rows]


# --- quarantine -----------------------------------------------------------------------------------


@router.get("/quarantine", response_model=list[a.QuarantineEntry])
async def list_quarantine(
    _: AdminDep,
    conn: ConnectionDep,
    reason: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_ ;]+$")] = None,
    reviewed: bool | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[a.QuarantineEntry]:
    """What the ingest path set aside, newest first, with any review."""
    rows = await quarantine.list_quarantine(
        conn, reason=reason, reviewed=reviewed, limit=limit, offset=offset
    )
    return [a.QuarantineEntry.model_validate(r) for r in rows]


@router.get("/quarantine/{quarantine_id}", response_model=a.QuarantineDetail)
async def get_quarantined(
    quarantine_id: RowIdPath, _: AdminDep, conn: ConnectionDep
) -> a.QuarantineDetail:
    row, payload = await quarantine.get(conn, quarantine_id)
    return a.QuarantineDetail(
        entry=a.QuarantineEntry.model_validate(row),
        payload_hex=payload[:PAYLOAD_PREVIEW_BYTES].hex(),
        truncated=len(payload) > PAYLOAD_PREVIEW_BYTES,
    )


@router.post("/quarantine/{quarantine_id}/review", response_model=a.Review)
async def review_quarantined(
    quarantine_id: RowIdPath, body: a.ReviewIn, principal: AdminDep, conn: ConnectionDep
) -> a.Review:
    """Dismiss a quarantined message, or ingest it again now that its cause is fixed (409 if it
    still cannot be stored, or was reviewed already)."""
    row, result = await quarantine.review(
        conn, quarantine_id, decision=body.decision, note=body.note, actor=principal.actor
    )
    return a.Review(
        entry=a.QuarantineEntry.model_validate(row),
        reingested=None if result is None else a.ReingestResult.model_validate(result),
    )


# --- webhooks -------------------------------------------------------------------------------------


@router.post("/webhooks", response_model=a.WebhookCreated, status_code=status.HTTP_201_CREATED)
async def create_webhook(
    body: a.WebhookIn, principal: AdminDep, conn: ConnectionDep
) -> a.WebhookCreated:
    """Announce alerts of at least ``min_severity`` to ``url`` (POST, HMAC-signed)."""
    row, secret = await webhooks.create_endpoint(
        conn, url=str(body.url), min_severity=body.min_severity, actor=principal.actor
    )
    return a.WebhookCreated(endpoint=a.Webhook.model_validate(row), secret=secret)


@router.get("/webhooks", response_model=list[a.Webhook])
async def list_webhooks(_: AdminDep, conn: ConnectionDep) -> list[a.Webhook]:
    return [a.Webhook.model_validate(r) for r in await webhooks.list_endpoints(conn)]


@router.delete("/webhooks/{endpoint_id}", response_model=a.Webhook)
async def deactivate_webhook(endpoint_id: RowIdPath, _: AdminDep, conn: ConnectionDep) -> a.Webhook:
    return a.Webhook.model_validate(await webhooks.deactivate_endpoint(conn, endpoint_id))


@router.get("/webhooks/deliveries", response_model=list[a.WebhookDelivery])
async def list_deliveries(
    _: AdminDep,
    conn: ConnectionDep,
    endpoint_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    alert_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Limit = 100,
) -> list[a.WebhookDelivery]:
    """The delivery log: each delivery with every attempt's answer or error."""
    rows = await webhooks.deliveries(conn, endpoint_id=endpoint_id, alert_id=alert_id, limit=limit)
    log: dict[int, list[a.WebhookAttempt]] = {r.delivery_id: [] for r in rows}
    for attempt in await webhooks.attempts(conn, list(log)):
        log[attempt.delivery_id].append(a.WebhookAttempt.model_validate(attempt))
    return [
        a.WebhookDelivery(
            delivery_id=r.delivery_id,
            endpoint_id=r.endpoint_id,
            alert_id=r.alert_id,
            event=r.event,
            status=r.status,  # type: ignore[arg-type]
            attempts=r.attempts,
            next_attempt_at=r.next_attempt_at,
            created_at=r.created_at,
            delivered_at=r.delivered_at,
            log=log[r.delivery_id],
        )
        for r in rows
    ]
