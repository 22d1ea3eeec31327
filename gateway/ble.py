"""The gateway's one entry point to bleak: find blood-pressure cuffs, connect, and stream what
they indicate. Only bleak's public API is used here, so the same code runs on BlueZ with real
hardware and on the bumble backend with simulators (``backend=`` chooses)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakError

from gateway.backoff import Backoff
from gateway.codec import uuids
from homewatch.wire import DeviceIdentity

log = logging.getLogger(__name__)

BPS = uuids.uuid128(uuids.BLOOD_PRESSURE_SERVICE)
BPM = uuids.uuid128(uuids.BLOOD_PRESSURE_MEASUREMENT)
_DIS_FIELDS = {
    "manufacturer": uuids.uuid128(uuids.MANUFACTURER_NAME),
    "model": uuids.uuid128(uuids.MODEL_NUMBER),
    "serial_number": uuids.uuid128(uuids.SERIAL_NUMBER),
    "firmware_revision": uuids.uuid128(uuids.FIRMWARE_REVISION),
}
#: The SIG health services the gateway knows: what `homewatch gateway scan` looks for.
HEALTH_SERVICES = {
    uuids.uuid128(uuids.BLOOD_PRESSURE_SERVICE): "blood pressure",
    uuids.uuid128(uuids.GLUCOSE_SERVICE): "glucose",
    uuids.uuid128(uuids.WEIGHT_SCALE_SERVICE): "weight scale",
    uuids.uuid128(uuids.PULSE_OXIMETER_SERVICE): "pulse oximeter",
    uuids.uuid128(uuids.HEALTH_THERMOMETER_SERVICE): "health thermometer",
}
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Received:
    """One characteristic value as it arrived, stamped with the gateway's clock."""

    device: DeviceIdentity
    characteristic: str
    payload: bytes
    received_at: datetime


OnReceived = Callable[[Received], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class BleBackends:
    """Which bleak backend to use; None fields mean the platform's own (BlueZ on Linux)."""

    scanner: type[BaseBleakScanner] | None = None
    client: type[BaseBleakClient] | None = None


@dataclass(frozen=True, slots=True)
class SeenDevice:
    name: str | None
    address: str
    services: tuple[str, ...]  # names of the health services it advertises
    rssi: int


@contextlib.asynccontextmanager
async def open_backends(ble_transport: str | None) -> AsyncIterator[BleBackends]:
    """The platform's Bluetooth (None), or a bumble controller behind a transport spec such as
    ``tcp-client:127.0.0.1:9001`` (simulated devices in another process)."""
    if ble_transport is None:
        yield BleBackends()
        return
    from gateway.bleak_bumble import BumbleCentral  # only when asked for: bumble is heavy

    async with BumbleCentral.from_transport(ble_transport) as central:
        yield BleBackends(central.scanner_backend, central.client_backend)


async def scan_health_devices(backends: BleBackends, duration: float) -> list[SeenDevice]:
    """Health devices advertising nearby, strongest signal first."""
    found = await BleakScanner.discover(
        timeout=duration,
        return_adv=True,
        service_uuids=list(HEALTH_SERVICES),
        backend=backends.scanner,
    )
    seen = [
        SeenDevice(
            name=adv.local_name or device.name,
            address=device.address,
            services=tuple(HEALTH_SERVICES[u] for u in adv.service_uuids if u in HEALTH_SERVICES),
            rssi=adv.rssi,
        )
        for device, adv in found.values()
    ]
    return sorted(seen, key=lambda d: -d.rssi)


async def watch_cuffs(backends: BleBackends, on_received: OnReceived, *, backoff: Backoff) -> None:
    """Scan for devices advertising the Blood Pressure Service and keep one session per device,
    until cancelled. A dropped connection is retried when the device advertises again, after a
    back-off of that device's own (one failing device never slows the others)."""
    sessions: dict[str, asyncio.Task[None]] = {}
    backoffs: dict[str, Backoff] = {}

    def detected(device: BLEDevice, adv: AdvertisementData) -> None:
        task = sessions.get(device.address)
        if task is None or task.done():
            log.info("found %s (%s, rssi %s)", device.address, adv.local_name, adv.rssi)
            device_backoff = backoffs.setdefault(device.address, dataclasses.replace(backoff))
            sessions[device.address] = asyncio.create_task(
                _session(device, backends, on_received, device_backoff),
                name=f"ble-{device.address}",
            )

    try:
        while True:
            try:
                async with BleakScanner(detected, service_uuids=[BPS], backend=backends.scanner):
                    await asyncio.Event().wait()
            except BleakError as exc:
                delay = backoff.next()
                log.warning("BLE scanning failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
    finally:
        for task in sessions.values():
            task.cancel()
        await asyncio.gather(*sessions.values(), return_exceptions=True)


async def _session(
    device: BLEDevice, backends: BleBackends, on_received: OnReceived, backoff: Backoff
) -> None:
    """Connect, identify, subscribe to measurements and forward them in arrival order."""
    disconnected = asyncio.Event()
    inbox: asyncio.Queue[tuple[bytes, datetime]] = asyncio.Queue()
    try:
        async with BleakClient(
            device,
            disconnected_callback=lambda _client: disconnected.set(),
            timeout=CONNECT_TIMEOUT,
            backend=backends.client,
        ) as client:
            identity = await read_identity(client, device.address)
            log.info("connected to %s", identity.device_key)

            def on_measurement(_char: object, data: bytearray) -> None:
                # Stamp now, in the callback: the queue may be drained a little later.
                inbox.put_nowait((bytes(data), datetime.now(UTC)))

            await client.start_notify(BPM, on_measurement)
            backoff.reset()
            drain = asyncio.create_task(_drain(inbox, identity, on_received))
            try:
                await disconnected.wait()
                await inbox.join()  # everything the device sent before it left is handled
            finally:
                drain.cancel()
            log.info("%s disconnected", identity.device_key)
    except (BleakError, TimeoutError) as exc:
        log.warning("session with %s ended: %s", device.address, exc)
        await asyncio.sleep(backoff.next())
    except Exception:
        # A device that misbehaves in a way we did not foresee is isolated: its session ends,
        # loudly, and the gateway goes on serving the others.
        log.exception("session with %s failed", device.address)
        await asyncio.sleep(backoff.next())


async def _drain(
    inbox: asyncio.Queue[tuple[bytes, datetime]], identity: DeviceIdentity, on_received: OnReceived
) -> None:
    while True:
        payload, received_at = await inbox.get()
        try:
            await on_received(Received(identity, BPM, payload, received_at))
        except Exception:
            log.exception("%s: could not handle %s", identity.device_key, payload.hex())
        finally:
            inbox.task_done()


async def read_identity(client: BleakClient, address: str) -> DeviceIdentity:
    """Device Information strings, where the device has them."""
    fields: dict[str, str] = {}
    for name, uuid in _DIS_FIELDS.items():
        if client.services.get_characteristic(uuid) is None:
            continue
        try:
            raw = await asyncio.wait_for(client.read_gatt_char(uuid), READ_TIMEOUT)
        except (BleakError, TimeoutError) as exc:
            log.warning("%s: cannot read %s: %s", address, name, exc)
            continue
        # Devices pad with NULs and worse: keep the printable text (the wire contract requires it).
        text = "".join(c for c in bytes(raw).decode("utf-8", errors="replace") if c.isprintable())
        text = text.strip()
        if text:
            fields[name] = text[:64]
    return DeviceIdentity(address=address, **fields)
