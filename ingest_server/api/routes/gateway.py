"""What a gateway may ask: the devices it should accept (those bound now to the patient whose
home it is in), in the form of its ``allowed_devices`` setting."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from ingest_server.api.deps import ConnectionDep, GatewayDep
from ingest_server.api.schemas import profile as m
from ingest_server.profile import devices
from ingest_server.profile.errors import NotFound

router = APIRouter(prefix="/gateway", tags=["gateway"])


class GatewayDevices(BaseModel):
    gateway_id: str
    #: Device keys, as ``HOMEWATCH_GATEWAY_ALLOWED_DEVICES`` takes them.
    allowed_devices: list[str]
    devices: list[m.Device]


@router.get("/devices", response_model=GatewayDevices)
async def my_devices(principal: GatewayDep, conn: ConnectionDep) -> GatewayDevices:
    """The calling gateway's provisioning list (its id is the token's subject)."""
    if await devices.get_gateway(conn, principal.subject) is None:
        raise NotFound("gateway", principal.subject)
    rows = await devices.gateway_devices(conn, principal.subject)
    return GatewayDevices(
        gateway_id=principal.subject,
        allowed_devices=[r.device_key for r in rows],
        devices=[m.Device.model_validate(r) for r in rows],
    )
