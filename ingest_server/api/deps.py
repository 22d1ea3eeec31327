"""Dependencies of the routes, as ``Annotated`` aliases: settings, the pool, a connection, the
caller (``Principal`` from the bearer token), role checks, and ``patient_access`` which decides
whether the caller may touch a patient's data and writes the audit row either way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer

from ingest_server import db
from ingest_server.api.schemas.common import PatientIdPath
from ingest_server.api.settings import ApiSettings
from ingest_server.auth import access
from ingest_server.auth.errors import Forbidden, Unauthenticated
from ingest_server.auth.principal import Principal, Role
from ingest_server.auth.tokens import TokenVerifier
from ingest_server.profile import audit, patients
from ingest_server.profile.errors import NotFound
from ingest_server.profile.models import ConsentPurpose
from ingest_server.settings import IngestSettings

#: What admin changes to a patient's record are audited as.
ADMINISTRATION = "administration"


def get_settings(request: Request) -> IngestSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_api_settings(request: Request) -> ApiSettings:
    return request.app.state.api_settings  # type: ignore[no-any-return]


def get_pool(request: Request) -> db.Pool:
    return request.app.state.pool  # type: ignore[no-any-return]


async def get_connection(request: Request) -> AsyncIterator[db.Connection]:
    async with db.connection(get_pool(request)) as conn:
        yield conn


PoolDep = Annotated[db.Pool, Depends(get_pool)]
SettingsDep = Annotated[IngestSettings, Depends(get_settings)]
ApiSettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]
ConnectionDep = Annotated[db.Connection, Depends(get_connection)]

_bearer = OAuth2PasswordBearer(tokenUrl="auth/token", auto_error=False)


async def get_principal(
    request: Request, token: Annotated[str | None, Depends(_bearer)]
) -> Principal:
    if not token:
        raise Unauthenticated("no bearer token")
    verifier: TokenVerifier = request.app.state.verifier
    return await verifier.verify(token)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"{principal.actor} used an endpoint for {', '.join(roles)}")
        return principal

    return check


AdminDep = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
ClinicianDep = Annotated[Principal, Depends(require_roles(Role.CLINICIAN))]
GatewayDep = Annotated[Principal, Depends(require_roles(Role.GATEWAY))]
ReaderDep = Annotated[Principal, Depends(require_roles(Role.CLINICIAN, Role.PATIENT))]

PurposeDep = Annotated[
    ConsentPurpose,
    Header(
        alias="X-Purpose-Of-Use",
        description="Why a clinician reads: the consent purpose the access must be covered by.",
    ),
]


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def audit_entry(
    request: Request,
    principal: Principal,
    action: str,
    purpose: str | None,
    outcome: str = "allowed",
) -> audit.AuditEntry:
    return audit.AuditEntry(
        actor=principal.actor,
        role=str(principal.role),
        action=action,
        resource=f"{request.method} {request.url.path}"[:500],
        purpose=purpose,
        client_address=client_address(request),
        outcome=outcome,
    )


@dataclass(frozen=True, slots=True)
class Grant:
    """Access to one patient's data, granted for one request."""

    principal: Principal
    patient_id: str
    purpose: str
    entry: audit.AuditEntry

    async def audit(self, conn: db.Connection) -> None:
        await audit.record(conn, self.entry, self.patient_id)


async def authorize(
    conn: db.Connection,
    request: Request,
    principal: Principal,
    patient_id: str,
    *,
    action: str,
    purpose: str,
    roles: Collection[Role] = (Role.CLINICIAN, Role.PATIENT),
) -> Grant:
    """May ``principal`` do ``action`` on ``patient_id``'s data? A refusal (``Forbidden``) is
    written to the audit trail here; a grant is audited by ``Grant.audit`` once the data is
    read. A patient that does not exist is ``NotFound``, but only for a caller who would
    otherwise be allowed (a refusal tells nothing about who is a patient here)."""
    try:
        if principal.role not in roles:
            raise Forbidden(f"{principal.actor} may not {action}")
        granted = await access.authorize_patient_access(conn, principal, patient_id, purpose)
    except Forbidden:
        entry = audit_entry(request, principal, action, purpose, outcome="denied")
        await audit.record(conn, entry, patient_id)
        raise
    if await patients.get_patient(conn, patient_id) is None:
        raise NotFound("patient", patient_id)
    return Grant(principal, patient_id, granted, audit_entry(request, principal, action, granted))


async def grant_access(
    conn: db.Connection,
    request: Request,
    principal: Principal,
    patient_id: str,
    *,
    action: str,
    purpose: str,
    roles: Collection[Role] = (Role.CLINICIAN, Role.PATIENT),
) -> Grant:
    """``authorize``, and the grant audited at once (for routes that read right after)."""
    grant = await authorize(
        conn, request, principal, patient_id, action=action, purpose=purpose, roles=roles
    )
    await grant.audit(conn)
    return grant


def patient_access(
    action: str, roles: Collection[Role] = (Role.CLINICIAN, Role.PATIENT)
) -> Callable[..., AsyncIterator[Grant]]:
    """A dependency for the patient in the path: ``authorize`` before the route runs, and the
    audit row written when the route has returned its data, before the response is sent (a
    request refused for bad parameters, or failing, reads nothing and leaves no "allowed"
    row; a refusal always leaves a "denied" one)."""

    async def check(
        patient_id: PatientIdPath,
        request: Request,
        principal: PrincipalDep,
        conn: ConnectionDep,
        purpose: PurposeDep = ConsentPurpose.TREATMENT,
    ) -> AsyncIterator[Grant]:
        grant = await authorize(
            conn, request, principal, patient_id, action=action, purpose=purpose, roles=roles
        )
        yield grant
        await grant.audit(conn)

    return check


def PatientGrant(action: str, *roles: Role) -> object:
    """``grant: Annotated[Grant, PatientGrant("read alerts")]``."""
    return Depends(
        patient_access(action, roles or (Role.CLINICIAN, Role.PATIENT)), scope="function"
    )


async def audit_admin(
    conn: db.Connection, request: Request, principal: Principal, action: str, patient_id: str | None
) -> None:
    """Audit an admin's change to (or read of) a patient's record."""
    await audit.record(conn, audit_entry(request, principal, action, ADMINISTRATION), patient_id)
