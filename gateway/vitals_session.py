"""A session with a device that delivers its measurements by indication: weight scales, pulse
oximeters (spot-check) and health thermometers, one generic session parameterised per profile.

These profiles work like a cuff without RACP: the device keeps what it measured while nobody
listened and indicates it, oldest first, as soon as the gateway subscribes; there is no end
marker, so a quiet period ends that backlog. The clock is handled as for cuffs
(``gateway.cuff_session``): read on connect, every record of the session corrected by the offset
measured then, and, once the backlog is in, a wrong clock set and read back, so that what the
device measures afterwards is stamped right. A payload that cannot be decoded (or decodes to
something the wire contract refuses) is rejected to the sink with its hex; the next one is read
as usual.

A profile is data (``IndicatedProfile``): the measurement characteristic, its decoder and the
reading builder of ``gateway.vitals_readings``, plus an optional ``prepare`` step that reads what
the device states once per connection (a thermometer's fixed Temperature Type).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from bleak import BleakClient
from bleak.exc import BleakError

from gateway.ble import READ_TIMEOUT, wait_disconnected
from gateway.clock_sync import clock_characteristic, read_clock, sync_clock
from gateway.codec import uuids
from gateway.codec.errors import DecodeError
from gateway.codec.pulse_oximeter import PlxSpotCheckMeasurement
from gateway.codec.thermometer import TemperatureMeasurement, TemperatureType
from gateway.codec.weight_scale import WeightMeasurement
from gateway.device_time import ClockCheck
from gateway.session_context import SessionContext
from gateway.vitals_readings import oximetry_reading, temperature_reading, weight_reading
from homewatch.wire import DeviceIdentity, Reading

log = logging.getLogger(__name__)

M = TypeVar("M")

#: (decoded measurement, payload, device, receive time, device time zone, clock) -> reading.
ReadingBuilder = Callable[[M, bytes, DeviceIdentity, datetime, ZoneInfo, ClockCheck], Reading]
#: Reads what a device states once per connection; returns the builder for the session.
Prepare = Callable[[BleakClient, DeviceIdentity, ReadingBuilder[M]], Awaitable[ReadingBuilder[M]]]
#: What ``gateway.profiles`` maps a service to.
Session = Callable[[BleakClient, DeviceIdentity, SessionContext], Awaitable[float | None]]
#: A device that offers the service without its measurement characteristic is not asked again
#: for this long (it will not grow one).
MISSING_MEASUREMENT_REST = 600.0
#: Longest reason kept with a rejected payload.
MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class IndicatedProfile(Generic[M]):
    """One "measurement by indication" profile, as the generic session needs it."""

    name: str  # for logs: "weight scale"
    measurement: int  # 16-bit UUID of the measurement characteristic
    decode: Callable[[bytes], M]  # raises DecodeError on a malformed payload
    build: ReadingBuilder[M]
    prepare: Prepare[M] | None = None

    @property
    def characteristic(self) -> str:
        """The measurement characteristic as rejected payloads record it ("2A9D")."""
        return f"{self.measurement:04X}"

    @property
    def measurement_uuid(self) -> str:
        return uuids.uuid128(self.measurement)


async def serve_indicated(
    profile: IndicatedProfile[M],
    client: BleakClient,
    identity: DeviceIdentity,
    ctx: SessionContext,
) -> float | None:
    """Run until the device disconnects; it is connected again whenever it advertises."""
    key = identity.device_key
    characteristic = client.services.get_characteristic(profile.measurement_uuid)
    if characteristic is None:
        log.warning("%s: %s without its measurement %s", key, profile.name, profile.characteristic)
        return MISSING_MEASUREMENT_REST
    quirks = ctx.quirks.for_device(identity.manufacturer, identity.model)
    if quirks.any:
        log.info("%s: quirks %s apply", key, quirks.id)
    clock_uuid = clock_characteristic(quirks.clock_characteristic)
    clock = await read_clock(client, clock_uuid, ctx.clock, key)
    build = profile.build
    if profile.prepare is not None:
        build = await profile.prepare(client, identity, build)
    # Each payload is queued with the clock check in force when it arrived.
    inbox: asyncio.Queue[tuple[bytes, datetime, ClockCheck]] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    last_arrival = loop.time()

    def on_measurement(_char: object, data: bytearray) -> None:
        nonlocal last_arrival
        last_arrival = loop.time()
        # Stamp now, in the callback: the queue may be drained a little later.
        inbox.put_nowait((bytes(data), datetime.now(UTC), clock))

    await client.start_notify(characteristic, on_measurement)  # indicate, or notify if offered
    drain = asyncio.create_task(
        _drain(profile, build, inbox, identity, ctx), name=f"{profile.name}-drain"
    )
    try:
        while client.is_connected:
            quiet_for = loop.time() - last_arrival
            if quiet_for >= ctx.stored_records_quiet:
                break
            await asyncio.sleep(min(0.1, ctx.stored_records_quiet - quiet_for))
        if client.is_connected:
            log.info("%s: stored records delivered; live from now", key)
            clock = await sync_clock(client, clock_uuid, clock, ctx.clock, key)
        await wait_disconnected(client)
        await inbox.join()  # everything the device sent before it left is handled
    finally:
        drain.cancel()
    return None


def indicated_session(profile: IndicatedProfile[M]) -> Session:
    """The session (as ``gateway.profiles`` maps them) that reads devices of ``profile``."""

    async def session(
        client: BleakClient, identity: DeviceIdentity, ctx: SessionContext
    ) -> float | None:
        return await serve_indicated(profile, client, identity, ctx)

    session.__name__ = session.__qualname__ = f"serve_{profile.name.replace(' ', '_')}"
    return session


async def _drain(
    profile: IndicatedProfile[M],
    build: ReadingBuilder[M],
    inbox: asyncio.Queue[tuple[bytes, datetime, ClockCheck]],
    identity: DeviceIdentity,
    ctx: SessionContext,
) -> None:
    while True:
        payload, received_at, clock = await inbox.get()
        try:
            await _handle(profile, build, payload, received_at, clock, identity, ctx)
        except Exception:
            log.exception("%s: could not handle %s", identity.device_key, payload.hex())
        finally:
            inbox.task_done()


async def _handle(
    profile: IndicatedProfile[M],
    build: ReadingBuilder[M],
    payload: bytes,
    received_at: datetime,
    clock: ClockCheck,
    identity: DeviceIdentity,
    ctx: SessionContext,
) -> None:
    try:
        measurement = profile.decode(payload)
        reading = build(measurement, payload, identity, received_at, ctx.clock.timezone, clock)
    except DecodeError as exc:
        reason = exc.reason
    except ValueError as exc:  # decoded, but off the wire contract (pydantic ValidationError)
        reason = f"not a valid {profile.name} reading: {' '.join(str(exc).split())}"
    else:
        await ctx.sink.accept([reading], identity)
        return
    # Not a measurement we can read: logged with its hex, kept aside, never sent.
    reason = reason[:MAX_REASON]
    log.error(
        "%s: %s %s rejected: %s", identity.device_key, profile.characteristic, payload.hex(), reason
    )
    await ctx.sink.reject(identity, profile.characteristic, payload, reason, received_at)


# --- the profiles ------------------------------------------------------------------------------

#: Temperature Type 0x2A1D: a thermometer's fixed body site (HTS), when it has one.
TEMPERATURE_TYPE = uuids.uuid128(0x2A1D)


async def _thermometer_site(
    client: BleakClient,
    identity: DeviceIdentity,
    build: ReadingBuilder[TemperatureMeasurement],
) -> ReadingBuilder[TemperatureMeasurement]:
    """A thermometer with a fixed body site states it once, in Temperature Type 0x2A1D, and
    leaves it out of its measurements: read it, and give it to every reading of the session."""
    if client.services.get_characteristic(TEMPERATURE_TYPE) is None:
        return build
    try:
        async with asyncio.timeout(READ_TIMEOUT):
            raw = bytes(await client.read_gatt_char(TEMPERATURE_TYPE))
    except (BleakError, TimeoutError) as exc:
        log.warning("%s: cannot read the Temperature Type: %s", identity.device_key, exc)
        return build
    if len(raw) != 1:
        log.warning("%s: Temperature Type %r is not one octet; ignored", identity.device_key, raw)
        return build
    site = TemperatureType(raw[0])
    log.info("%s: body site %s", identity.device_key, site.text)
    return functools.partial(temperature_reading, site=site)


WEIGHT_SCALE: IndicatedProfile[WeightMeasurement] = IndicatedProfile(
    "weight scale", uuids.WEIGHT_MEASUREMENT, WeightMeasurement.from_bytes, weight_reading
)
PULSE_OXIMETER: IndicatedProfile[PlxSpotCheckMeasurement] = IndicatedProfile(
    "pulse oximeter",
    uuids.PLX_SPOT_CHECK_MEASUREMENT,
    PlxSpotCheckMeasurement.from_bytes,
    oximetry_reading,
)
THERMOMETER: IndicatedProfile[TemperatureMeasurement] = IndicatedProfile(
    "thermometer",
    uuids.TEMPERATURE_MEASUREMENT,
    TemperatureMeasurement.from_bytes,
    temperature_reading,
    prepare=_thermometer_site,
)

serve_weight_scale = indicated_session(WEIGHT_SCALE)
serve_pulse_oximeter = indicated_session(PULSE_OXIMETER)
serve_thermometer = indicated_session(THERMOMETER)
