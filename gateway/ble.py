"""The gateway's one entry point to bleak: find health devices, connect, identify them, and
hand each connected device to the session that speaks its profile. Only bleak's public API is
used here, so the same code runs on BlueZ with real hardware and on the bumble backend with
simulators (``backend=`` chooses)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass

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
GLS = uuids.uuid128(uuids.GLUCOSE_SERVICE)
WSS = uuids.uuid128(uuids.WEIGHT_SCALE_SERVICE)
PLXS = uuids.uuid128(uuids.PULSE_OXIMETER_SERVICE)
HTS = uuids.uuid128(uuids.HEALTH_THERMOMETER_SERVICE)
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


class NotAllowed(Exception):
    """A connected device is not on the gateway's allowlist."""


class SessionEnded(Exception):
    """A session ended early in a way its protocol foresees (a transfer cut short): logged as
    a warning, and the device is connected again after its back-off."""


#: What a session returns: seconds to leave the device alone before connecting again (a meter
#: read a moment ago has nothing new), or None to reconnect whenever it advertises (a cuff).
Session = Callable[[BleakClient, DeviceIdentity], Awaitable[float | None]]
#: Chooses the session for a connected device from its services; None: nothing to do with it.
SessionFor = Callable[[BleakClient], Session | None]


@dataclass(frozen=True, slots=True)
class Allowlist:
    """The provisioned devices: bluetooth addresses and/or device keys (``make/model/serial``).

    Addresses are checked before connecting; device keys once Device Information is read.
    Empty: every health device in range is served (development and demos only).
    """

    addresses: frozenset[str] = frozenset()
    device_keys: frozenset[str] = frozenset()

    @classmethod
    def of(cls, entries: Collection[str]) -> Allowlist:
        """Entries with a ``/`` are device keys, the others addresses."""
        keys = frozenset(e for e in entries if "/" in e)
        addresses = frozenset(e.upper() for e in entries if "/" not in e)
        return cls(addresses, keys)

    @property
    def open(self) -> bool:
        return not self.addresses and not self.device_keys

    def may_connect(self, address: str) -> bool:
        # A device listed by key can have any address: only connecting tells who it is.
        return self.open or bool(self.device_keys) or address.upper() in self.addresses

    def allows(self, identity: DeviceIdentity) -> bool:
        return (
            self.open
            or identity.address.upper() in self.addresses
            or identity.device_key in self.device_keys
        )


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


async def watch_devices(
    backends: BleBackends,
    session_for: SessionFor,
    *,
    services: Collection[str],
    allowlist: Allowlist,
    backoff: Backoff,
    pair: bool = False,
) -> None:
    """Scan for devices advertising one of ``services`` and keep one session per device, until
    cancelled. A failed or dropped session is retried when the device advertises again, after a
    back-off of that device's own (one failing device never slows the others). A device that is
    not on the allowlist is left alone (and not connected again for a while)."""
    sessions: dict[str, asyncio.Task[None]] = {}
    backoffs: dict[str, Backoff] = {}
    quiet_until: dict[str, float] = {}  # address -> monotonic time before which we leave it be
    refused: set[str] = set()

    def detected(device: BLEDevice, adv: AdvertisementData) -> None:
        address = device.address
        task = sessions.get(address)
        if (task is not None and not task.done()) or time.monotonic() < quiet_until.get(
            address, 0.0
        ):
            return
        if not allowlist.may_connect(address):
            if address not in refused:
                refused.add(address)
                log.info("ignoring %s (%s): not on the allowlist", address, adv.local_name)
            return
        log.info("found %s (%s, rssi %s)", address, adv.local_name, adv.rssi)
        device_backoff = backoffs.setdefault(address, dataclasses.replace(backoff))
        sessions[address] = asyncio.create_task(
            _session(device, backends, session_for, allowlist, device_backoff, quiet_until, pair),
            name=f"ble-{address}",
        )

    try:
        while True:
            try:
                async with BleakScanner(
                    detected, service_uuids=list(services), backend=backends.scanner
                ):
                    await asyncio.Event().wait()
            except BleakError as exc:
                delay = backoff.next()
                log.warning("BLE scanning failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
    finally:
        for task in sessions.values():
            task.cancel()
        await asyncio.gather(*sessions.values(), return_exceptions=True)


#: How long a device that is not on the allowlist is left alone after it was identified.
NOT_ALLOWED_QUIET = 600.0


async def _session(
    device: BLEDevice,
    backends: BleBackends,
    session_for: SessionFor,
    allowlist: Allowlist,
    backoff: Backoff,
    quiet_until: dict[str, float],
    pair: bool,
) -> None:
    """Connect, identify, run the device's session; isolate whatever goes wrong."""
    rest: float | None = None
    try:
        async with BleakClient(
            device, timeout=CONNECT_TIMEOUT, backend=backends.client, pair=pair
        ) as client:
            identity = await read_identity(client, device.address)
            if not allowlist.allows(identity):
                raise NotAllowed(identity.device_key)
            session = session_for(client)
            if session is None:
                log.info("%s offers no profile the gateway reads", identity.device_key)
                rest = NOT_ALLOWED_QUIET
                return
            log.info("connected to %s", identity.device_key)
            rest = await session(client, identity)
            backoff.reset()
            log.info("session with %s ended", identity.device_key)
    except NotAllowed as exc:
        log.warning("%s (%s) is not on the allowlist; disconnected", exc, device.address)
        rest = NOT_ALLOWED_QUIET
    except (BleakError, TimeoutError, SessionEnded) as exc:
        log.warning("session with %s ended: %s", device.address, exc)
        await asyncio.sleep(backoff.next())
    except Exception:
        # A device that misbehaves in a way we did not foresee is isolated: its session ends,
        # loudly, and the gateway goes on serving the others.
        log.exception("session with %s failed", device.address)
        await asyncio.sleep(backoff.next())
    finally:
        if rest:
            quiet_until[device.address] = time.monotonic() + rest


async def wait_disconnected(client: BleakClient, poll: float = 0.1) -> None:
    """Until the device goes away (bleak has no awaitable for it; is_connected is cheap)."""
    while client.is_connected:
        await asyncio.sleep(poll)


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
