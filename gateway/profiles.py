"""Which session reads which device: the SIG service a connected device offers decides.

One entry per profile the gateway reads, in order of preference (a device offering two is read
by the first). A session is ``async (client, identity, ctx) -> rest seconds | None``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bleak import BleakClient

from gateway.ble import BPS, GLS, HTS, PLXS, WSS
from gateway.cuff_session import serve_cuff
from gateway.meter_session import serve_meter
from gateway.session_context import SessionContext
from gateway.vitals_session import serve_pulse_oximeter, serve_thermometer, serve_weight_scale
from homewatch.wire import DeviceIdentity

ProfileSession = Callable[[BleakClient, DeviceIdentity, SessionContext], Awaitable[float | None]]

#: service UUID (128-bit, as bleak reports it) -> the session that reads such a device.
PROFILES: dict[str, ProfileSession] = {
    BPS: serve_cuff,
    GLS: serve_meter,
    WSS: serve_weight_scale,
    PLXS: serve_pulse_oximeter,
    HTS: serve_thermometer,
}


def session_for(client: BleakClient) -> ProfileSession | None:
    """The session for a connected device, None when it offers no profile the gateway reads."""
    for service, session in PROFILES.items():
        if client.services.get_service(service) is not None:
            return session
    return None
