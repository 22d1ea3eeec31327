"""Admin: gateways (which home each is in), devices, and their bindings to patients over time.

Device keys contain slashes (``make/model/serial``), so they travel in bodies and query
strings, not in paths."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from ingest_server.api.deps import AdminDep, ConnectionDep, audit_admin
from ingest_server.api.schemas import admin as a
from ingest_server.api.schemas import profile as m
from ingest_server.api.schemas.common import ID_PATTERN, Limit, Offset
from ingest_server.profile import devices, patients
from ingest_server.profile.errors import NotFound

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/gateways", response_model=list[m.Gateway])
async def list_gateways(
    _: AdminDep, conn: ConnectionDep, limit: Limit = 100, offset: Offset = 0
) -> list[m.Gateway]:
    return [
        m.Gateway.model_validate(r)
        for r in await devices.list_gateways(conn, limit=limit, offset=offset)
    ]


@router.put("/gateways/{gateway_id}", response_model=m.Gateway)
async def put_gateway(
    gateway_id: Annotated[str, Path(pattern=ID_PATTERN)],
    body: a.GatewayIn,
    request: Request,
    principal: AdminDep,
    conn: ConnectionDep,
) -> m.Gateway:
    """Register a gateway (before its first message) and the home it is in."""
    if body.patient_id is not None:
        await patients.require_patient(conn, body.patient_id)
    row = await devices.register_gateway(
        conn, gateway_id, patient_id=body.patient_id, label=body.label
    )
    if body.patient_id is not None:
        await audit_admin(conn, request, principal, f"assign gateway {gateway_id}", body.patient_id)
    return m.Gateway.model_validate(row)


@router.get("/devices", response_model=list[m.Device])
async def list_devices(
    _: AdminDep, conn: ConnectionDep, limit: Limit = 100, offset: Offset = 0
) -> list[m.Device]:
    """Devices with the patient each is bound to now."""
    return [
        m.Device.model_validate(r)
        for r in await devices.list_devices(conn, limit=limit, offset=offset)
    ]


@router.put("/devices", response_model=m.Device)
async def put_device(body: a.DeviceIn, _: AdminDep, conn: ConnectionDep) -> m.Device:
    """Register a device before it is first seen, or describe it (kind, label)."""
    row = await devices.register_device(
        conn,
        body.device_key,
        kind=body.kind,
        label=body.label,
        manufacturer=body.manufacturer,
        model=body.model,
        serial_number=body.serial_number,
    )
    return m.Device.model_validate(row)


@router.get("/bindings", response_model=list[m.Binding])
async def device_bindings(
    _: AdminDep,
    conn: ConnectionDep,
    device_key: Annotated[str, Query(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")],
) -> list[m.Binding]:
    """A device's binding history, oldest first."""
    if await devices.get_device(conn, device_key) is None:
        raise NotFound("device", device_key)
    return [m.Binding.model_validate(r) for r in await devices.device_bindings(conn, device_key)]


@router.post("/bindings", response_model=m.Binding, status_code=status.HTTP_201_CREATED)
async def bind_device(
    body: a.BindingIn, request: Request, principal: AdminDep, conn: ConnectionDep
) -> m.Binding:
    """Bind a device to a patient from ``valid_from`` on; its current binding ends there (409
    when that would overlap its history)."""
    row = await devices.bind(conn, body.device_key, body.patient_id, body.valid_from)
    await audit_admin(conn, request, principal, f"bind device {body.device_key}", body.patient_id)
    return m.Binding.model_validate(row)


@router.post("/bindings/end", response_model=m.Binding)
async def end_binding(
    body: a.EndBindingIn, request: Request, principal: AdminDep, conn: ConnectionDep
) -> m.Binding:
    """End a device's current binding (returned to stock, lost, replaced)."""
    row = await devices.end_binding(
        conn, body.device_key, at=body.at, actor=principal.actor, reason=body.reason
    )
    await audit_admin(conn, request, principal, f"unbind device {body.device_key}", row.patient_id)
    return m.Binding.model_validate(row)
