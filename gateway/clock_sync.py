"""Reading and setting a device's clock over GATT: Current Time 0x2A2B (CTS), or a vendor's
Date Time 0x2A08 where the quirk table says the device keeps its clock there.

The offset is measured against the gateway's clock at the middle of the read, so the read's
own round trip does not count as drift.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bleak import BleakClient
from bleak.exc import BleakError

from gateway.codec import uuids
from gateway.codec.date_time import AdjustReason, CurrentTime, DateTime
from gateway.codec.errors import DecodeError
from gateway.device_time import ClockCheck, check_clock
from homewatch.wire import ClockStatus

log = logging.getLogger(__name__)

CURRENT_TIME = uuids.uuid128(uuids.CURRENT_TIME)
DATE_TIME = uuids.uuid128(uuids.DATE_TIME)
GATT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class ClockPolicy:
    timezone: ZoneInfo
    #: Within this the device clock counts as right; beyond it readings are corrected.
    bound: timedelta
    #: Write the gateway's time into a wrong or unset device clock (when it is writable).
    set_clock: bool = True


def clock_characteristic(quirk: str | None) -> str:
    """The 128-bit UUID of the characteristic holding the device clock (CTS unless a quirk)."""
    if quirk is None:
        return CURRENT_TIME
    uuid16 = uuids.parse_uuid16(quirk)
    if uuid16 not in (uuids.CURRENT_TIME, uuids.DATE_TIME):
        raise ValueError(f"unsupported clock characteristic {quirk!r}")
    return uuids.uuid128(uuid16)


async def read_clock(
    client: BleakClient, characteristic: str, policy: ClockPolicy, device_key: str
) -> ClockCheck:
    """The device clock compared with the gateway's; ``unknown`` when it cannot be read."""
    if client.services.get_characteristic(characteristic) is None:
        return ClockCheck.unknown()
    before = datetime.now(UTC)
    try:
        async with asyncio.timeout(GATT_TIMEOUT):
            raw = bytes(await client.read_gatt_char(characteristic))
    except (BleakError, TimeoutError) as exc:
        log.warning("%s: cannot read the device clock: %s", device_key, exc)
        return ClockCheck.unknown()
    gateway_now = before + (datetime.now(UTC) - before) / 2
    try:
        device_now = _decode(characteristic, raw)
    except DecodeError as exc:
        log.warning("%s: unreadable device clock: %s", device_key, exc)
        return ClockCheck.unknown()
    check = check_clock(device_now, gateway_now, policy.timezone, policy.bound)
    log.info(
        "%s: device clock %s (%s, offset %s)",
        device_key, device_now, check.status, check.offset,
    )  # fmt: skip
    return check


async def sync_clock(
    client: BleakClient,
    characteristic: str,
    check: ClockCheck,
    policy: ClockPolicy,
    device_key: str,
) -> ClockCheck:
    """Set a wrong or unset device clock to the gateway's time; the clock check that holds for
    what the device stamps from now on (``check`` itself when nothing was written)."""
    if not policy.set_clock or check.status not in (ClockStatus.CORRECTED, ClockStatus.UNSET):
        return check
    char = client.services.get_characteristic(characteristic)
    if char is None or not {"write", "write-without-response"} & set(char.properties):
        log.info("%s: device clock is off (%s) and not writable", device_key, check.status)
        return check
    now = datetime.now(policy.timezone)
    value = (
        bytes(
            CurrentTime.from_datetime(
                now, adjust_reason=AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE
            )
        )
        if characteristic == CURRENT_TIME
        else bytes(DateTime.from_datetime(now))
    )
    try:
        async with asyncio.timeout(GATT_TIMEOUT):
            await client.write_gatt_char(characteristic, value, response=True)
    except (BleakError, TimeoutError) as exc:
        log.warning("%s: could not set the device clock: %s", device_key, exc)
        return check
    log.info("%s: device clock set to %s (was %s)", device_key, now.replace(tzinfo=None), check)
    # Read it back rather than assume: some devices ignore or round what is written.
    return await read_clock(client, characteristic, policy, device_key)


def _decode(characteristic: str, raw: bytes) -> datetime | None:
    if characteristic == CURRENT_TIME:
        return CurrentTime.from_bytes(raw).to_datetime()
    return DateTime.from_bytes(raw).to_datetime()
