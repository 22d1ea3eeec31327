"""FHIR R4 export: ``Patient``, an ``Observation`` search, and ``Patient/$everything``.

Read-only, under the same access rule and audit as the rest of the API; answers are
``application/fhir+json``, errors are OperationOutcomes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from ingest_server import db, fhir
from ingest_server.api.deps import (
    ConnectionDep,
    Grant,
    PatientGrant,
    PrincipalDep,
    PurposeDep,
    grant_access,
)
from ingest_server.profile import alerts, care, clinical, devices, patients, readings
from ingest_server.profile.errors import InvalidValue
from ingest_server.profile.models import ConsentPurpose

router = APIRouter(prefix="/fhir", tags=["fhir"])

_FHIR_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {fhir.FHIR_JSON: {"schema": {"type": "object"}}},
        "description": "A FHIR resource",
    }
}
MAX_COUNT = 1000


def _fhir(resource: dict[str, Any]) -> JSONResponse:
    return JSONResponse(resource, media_type=fhir.FHIR_JSON)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


async def _patient_resource(conn: db.Connection, patient_id: str) -> dict[str, Any]:
    row = await patients.require_patient(conn, patient_id)
    return fhir.patient(
        row, await patients.identifiers(conn, patient_id), await patients.contacts(conn, patient_id)
    )


async def _observations(
    conn: db.Connection, patient_id: str, since: datetime | None, until: datetime | None, count: int
) -> list[dict[str, Any]]:
    bp = await readings.fhir_blood_pressure(conn, patient_id, since=since, until=until, limit=count)
    gl = await readings.fhir_glucose(conn, patient_id, since=since, until=until, limit=count)
    resources: list[dict[str, Any]] = []
    for row in bp:
        resources.extend(fhir.blood_pressure_observations(row, patient_id))
    resources.extend(fhir.glucose_observation(row, patient_id) for row in gl)
    resources.sort(key=lambda r: r["effectiveDateTime"], reverse=True)
    return resources


@router.get("/Patient/{patient_id}", response_class=JSONResponse, responses=_FHIR_RESPONSE)
async def read_patient(
    grant: Annotated[Grant, PatientGrant("fhir read Patient")], conn: ConnectionDep
) -> JSONResponse:
    return _fhir(await _patient_resource(conn, grant.patient_id))


def _parse_date(value: str) -> tuple[str, datetime]:
    """A FHIR ``date`` search value: prefix (ge, gt, le, lt) and an instant (a plain date is its
    start, in UTC)."""
    prefix, text = (
        (value[:2], value[2:]) if value[:2] in ("ge", "gt", "le", "lt") else ("eq", value)
    )
    try:
        if len(text) == 10:
            return prefix, datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidValue("date", f"not a FHIR date: {value!r}") from exc
    if at.tzinfo is None:
        raise InvalidValue("date", f"a date-time needs a time zone: {value!r}")
    return prefix, at


def date_window(values: list[str]) -> tuple[datetime | None, datetime | None]:
    since = until = None
    for value in values:
        prefix, at = _parse_date(value)
        if prefix in ("ge", "gt"):
            since = at
        elif prefix in ("le", "lt"):
            until = at
        else:
            raise InvalidValue("date", "use the ge/gt and le/lt prefixes")
    return since, until


@router.get("/Observation", response_class=JSONResponse, responses=_FHIR_RESPONSE)
async def search_observations(
    request: Request,
    principal: PrincipalDep,
    conn: ConnectionDep,
    patient: Annotated[
        str,
        Query(
            max_length=80,
            pattern=r"^(Patient/)?[A-Za-z0-9._:@-]{1,64}$",
            description="Patient id or Patient/id",
        ),
    ],
    date_: Annotated[
        list[str] | None,
        Query(alias="date", max_length=2, description="ge<instant> and/or lt<instant>"),
    ] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=MAX_COUNT)] = 100,
    purpose: PurposeDep = ConsentPurpose.TREATMENT,
) -> JSONResponse:
    """The patient's readings as Observations (blood-pressure panels, heart rate, glucose), in
    a searchset Bundle, newest first."""
    for value in date_ or []:
        if len(value) > 40:
            raise InvalidValue("date", "date value too long")
    since, until = date_window(date_ or [])
    patient_id = patient.removeprefix("Patient/")
    grant = await grant_access(
        conn, request, principal, patient_id, action="fhir search Observation", purpose=purpose
    )
    resources = await _observations(conn, grant.patient_id, since, until, count)
    return _fhir(fhir.bundle(resources[:count], _base(request)))


@router.get(
    "/Patient/{patient_id}/$everything", response_class=JSONResponse, responses=_FHIR_RESPONSE
)
async def everything(
    request: Request,
    grant: Annotated[Grant, PatientGrant("fhir Patient $everything")],
    conn: ConnectionDep,
    start: Annotated[date | None, Query(description="Observations from this date")] = None,
    end: Annotated[date | None, Query(description="Observations up to this date")] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=MAX_COUNT)] = MAX_COUNT,
) -> JSONResponse:
    """The patient's record as one Bundle: Patient, Device (measuring devices and gateways),
    Observation, Condition, Flag (alerts), Consent."""
    pid = grant.patient_id
    since = None if start is None else datetime.combine(start, time(), tzinfo=UTC)
    until = None if end is None else datetime.combine(end, time.max, tzinfo=UTC)
    async with db.transaction(conn):
        resources = [await _patient_resource(conn, pid)]
        resources += [
            fhir.device(d, pid if d.patient_id == pid else None)
            for d in await devices.patient_devices(conn, pid)
        ]
        resources += [
            fhir.gateway_device(g, pid) for g in await devices.patient_gateways(conn, pid)
        ]
        resources += [fhir.condition(cond, pid) for cond in await clinical.conditions(conn, pid)]
        resources += (await _observations(conn, pid, since, until, count))[:count]
        resources += [fhir.flag(a) for a in await alerts.patient_alerts(conn, pid, 500)]
        resources += [fhir.consent(k) for k in await care.consents(conn, pid)]
    return _fhir(fhir.bundle(resources, _base(request)))
