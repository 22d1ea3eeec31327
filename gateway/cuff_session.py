"""A session with a blood-pressure cuff: measurements by indication (or notification, where a
cuff gets that wrong), Intermediate Cuff Pressure as live progress, and the device clock.

A cuff without RACP sends the records it kept while nobody listened as soon as the gateway
subscribes; there is no end marker, so a quiet period ends that backlog. Only then is a wrong
clock set: every record stamped by the old clock is corrected by the offset measured on connect,
and what the cuff measures afterwards by the offset read back after the write.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from bleak import BleakClient

from gateway.ble import BPM, wait_disconnected
from gateway.clock_sync import clock_characteristic, read_clock, sync_clock
from gateway.codec import IntermediateCuffPressure, uuids
from gateway.codec.errors import DecodeError
from gateway.device_time import ClockCheck
from gateway.quirks import DeviceQuirks, decode_blood_pressure
from gateway.readings import blood_pressure_reading
from gateway.session_context import SessionContext
from homewatch.wire import DeviceIdentity

log = logging.getLogger(__name__)

ICP = uuids.uuid128(uuids.INTERMEDIATE_CUFF_PRESSURE)


async def serve_cuff(
    client: BleakClient, identity: DeviceIdentity, ctx: SessionContext
) -> float | None:
    """Run until the cuff disconnects; cuffs are reconnected whenever they advertise."""
    quirks = ctx.quirks.for_device(identity.manufacturer, identity.model)
    if quirks.any:
        log.info("%s: quirks %s apply", identity.device_key, quirks.id)
    clock_uuid = clock_characteristic(quirks.clock_characteristic)
    clock = await read_clock(client, clock_uuid, ctx.clock, identity.device_key)
    # Each payload is queued with the clock check in force when it arrived.
    inbox: asyncio.Queue[tuple[bytes, datetime, ClockCheck]] = asyncio.Queue()
    last_arrival = asyncio.get_running_loop().time()

    def on_measurement(_char: object, data: bytearray) -> None:
        nonlocal last_arrival
        last_arrival = asyncio.get_running_loop().time()
        # Stamp now, in the callback: the queue may be drained a little later.
        inbox.put_nowait((bytes(data), datetime.now(UTC), clock))

    if not ctx.sink.has_room():
        # Outbox at its bound: do not subscribe, so the cuff keeps its records until there is room.
        log.error("%s: outbox full; leaving the cuff's records on the cuff", identity.device_key)
        return ctx.meter_rest
    if client.services.get_characteristic(ICP) is not None:
        await client.start_notify(ICP, _progress_callback(identity, ctx))
    await client.start_notify(BPM, on_measurement)  # notify or indicate, whichever it offers
    drain = asyncio.create_task(_drain(inbox, identity, quirks, ctx), name="cuff-drain")
    try:
        while client.is_connected:
            quiet_for = asyncio.get_running_loop().time() - last_arrival
            if quiet_for >= ctx.stored_records_quiet:
                break
            await asyncio.sleep(min(0.1, ctx.stored_records_quiet - quiet_for))
        if client.is_connected:
            log.info("%s: stored records delivered; live from now", identity.device_key)
            clock = await sync_clock(client, clock_uuid, clock, ctx.clock, identity.device_key)
        await wait_disconnected(client)
        await inbox.join()  # everything the device sent before it left is handled
    finally:
        drain.cancel()
    return None


def _progress_callback(identity: DeviceIdentity, ctx: SessionContext):
    on_progress = ctx.on_progress or _log_progress

    def on_icp(_char: object, data: bytearray) -> None:
        try:
            icp = IntermediateCuffPressure.from_bytes(bytes(data))
        except DecodeError as exc:
            log.warning("%s: %s", identity.device_key, exc)
            return
        on_progress(identity, icp.current_cuff_pressure_mmhg())

    return on_icp


def _log_progress(identity: DeviceIdentity, pressure: float | None) -> None:
    log.debug("%s: cuff pressure %s mmHg", identity.device_key, pressure)


async def _drain(
    inbox: asyncio.Queue[tuple[bytes, datetime, ClockCheck]],
    identity: DeviceIdentity,
    quirks: DeviceQuirks,
    ctx: SessionContext,
) -> None:
    while True:
        payload, received_at, clock = await inbox.get()
        try:
            await _handle(payload, received_at, clock, identity, quirks, ctx)
        except Exception:
            log.exception("%s: could not handle %s", identity.device_key, payload.hex())
        finally:
            inbox.task_done()


async def _handle(
    payload: bytes,
    received_at: datetime,
    clock: ClockCheck,
    identity: DeviceIdentity,
    quirks: DeviceQuirks,
    ctx: SessionContext,
) -> None:
    try:
        measurement = decode_blood_pressure(payload, quirks)
    except DecodeError as exc:
        # Not a measurement we can read: logged with its hex, kept aside, never sent.
        log.error("%s: %s", identity.device_key, exc)
        await ctx.sink.reject(identity, "2A35", payload, exc.reason, received_at)
        return
    reading = blood_pressure_reading(
        measurement, payload, identity, received_at, ctx.clock.timezone, clock
    )
    await ctx.sink.accept([reading], identity)
