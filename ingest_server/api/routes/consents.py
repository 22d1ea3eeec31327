"""A patient's consents: the patient grants and revokes them; the state and history can be read
by the patient and by clinicians who may read the patient."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, status

from ingest_server import db
from ingest_server.api.deps import ConnectionDep, Grant, PatientGrant
from ingest_server.api.schemas import profile as m
from ingest_server.auth.principal import Role
from ingest_server.profile import care
from ingest_server.profile.errors import InvalidValue

router = APIRouter(prefix="/patients/{patient_id}/consents", tags=["consents"])


@router.get("", response_model=m.Consents)
async def list_consents(
    grant: Annotated[Grant, PatientGrant("read consents")], conn: ConnectionDep
) -> m.Consents:
    """Every consent with its state now (active, expired, revoked), and the history."""
    return m.Consents(
        consents=[m.Consent.model_validate(r) for r in await care.consents(conn, grant.patient_id)],
        history=[
            m.ConsentEvent.model_validate(r)
            for r in await care.consent_events(conn, grant.patient_id)
        ],
    )


@router.post("", response_model=m.Consent, status_code=status.HTTP_201_CREATED)
async def grant_consent(
    body: m.ConsentIn,
    grant: Annotated[Grant, PatientGrant("grant consent", Role.PATIENT)],
    conn: ConnectionDep,
) -> m.Consent:
    """The patient allows an organisation or a clinician access for a purpose, until a date."""
    if body.valid_until is not None and body.valid_until <= datetime.now(UTC):
        raise InvalidValue("valid_until", "valid_until must be in the future")
    row = await care.grant_consent(
        conn,
        grant.patient_id,
        grantee_kind=body.grantee_kind,
        grantee_id=body.grantee_id,
        purpose=body.purpose,
        valid_until=body.valid_until,
        actor=grant.principal.actor,
    )
    return m.Consent.model_validate(row)


@router.post("/{consent_id}/revoke", response_model=m.Consent)
async def revoke_consent(
    consent_id: Annotated[int, Path(ge=1, le=2**62)],
    grant: Annotated[Grant, PatientGrant("revoke consent", Role.PATIENT)],
    conn: ConnectionDep,
) -> m.Consent:
    """Revoke now: access under it ends with this request (also for open live streams)."""
    async with db.transaction(conn):
        row = await care.revoke_consent(conn, grant.patient_id, consent_id, grant.principal.actor)
    return m.Consent.model_validate(row)
