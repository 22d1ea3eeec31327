"""Battery Level (0x2A19) of a connected device, for the gateway's status: read once per
session, before the profile's session starts. A device without it, or one that fails the read,
simply has no battery figure; the session goes on."""

from __future__ import annotations

import asyncio
import logging

from bleak import BleakClient
from bleak.exc import BleakError

from gateway.codec import uuids

log = logging.getLogger(__name__)

BATTERY_LEVEL = uuids.uuid128(uuids.BATTERY_LEVEL)
READ_TIMEOUT = 5.0


async def read_battery_level(client: BleakClient, device_key: str) -> int | None:
    """Percent, or None when the device has no Battery Level or sent something invalid."""
    if client.services.get_characteristic(BATTERY_LEVEL) is None:
        return None
    try:
        raw = bytes(await asyncio.wait_for(client.read_gatt_char(BATTERY_LEVEL), READ_TIMEOUT))
    except (BleakError, TimeoutError) as exc:
        log.warning("%s: cannot read the battery level: %s", device_key, exc)
        return None
    if len(raw) != 1 or raw[0] > 100:
        log.warning("%s: invalid battery level %s", device_key, raw.hex())
        return None
    return raw[0]
