"""The central: one bumble ``Device`` in the central role, shared by the bleak backends bound to it.

The gateway creates one ``BumbleCentral`` and hands its ``scanner_backend`` and ``client_backend``
to bleak::

    async with BumbleCentral.from_transport("tcp-client:127.0.0.1:9001") as central:
        async with BleakScanner(on_adv, service_uuids=[BPS], backend=central.scanner_backend):
            ...
        async with BleakClient(ble_device, backend=central.client_backend) as client:
            ...

or, in-process, ``BumbleCentral(device)`` with a bumble ``Device`` already attached to a link.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import BaseBleakScanner
from bleak.exc import BleakDeviceNotFoundError
from bumble import core, hci
from bumble.device import Advertisement, Connection, Device
from bumble.transport import open_transport
from bumble.transport.common import Transport

from gateway.bleak_bumble.cancellation import keep_cancellation
from gateway.bleak_bumble.errors import (
    BumbleBackendError,
    BumbleCentralStateError,
    BumbleTransportError,
    translate_error,
)

logger = logging.getLogger(__name__)

DEFAULT_NAME = "homewatch-gateway"
#: A random static address (two top bits set) for a central created from a transport spec.
DEFAULT_ADDRESS = "C0:DE:00:00:00:01"
#: How long one HCI command to the controller may take before the central gives up.
DEFAULT_COMMAND_TIMEOUT = 10.0

AdvertisementListener = Callable[[Advertisement], None]


@dataclass(frozen=True)
class BumbleDeviceDetails:
    """What ``BLEDevice.details`` holds for a device seen by this backend."""

    address: hci.Address
    """The bumble address, with its type (public or random): what connecting needs."""


def address_key(address: hci.Address) -> str:
    """The address as bleak shows it: upper-case, colon separated, without a type suffix."""
    return address.to_string(with_type_qualifier=False).upper()


class BumbleCentral:
    """One bumble ``Device`` acting as a BLE central for bleak, used as ``async with``.

    Args:
        device: an existing bumble Device (e.g. on an in-process ``LocalLink``). The central
            powers it on if needed and never powers it off: its owner does.
        transport: instead of ``device``, a bumble transport spec such as
            ``"tcp-client:127.0.0.1:9001"``; the central opens it, creates its own Device on it
            with ``name`` and ``address``, and closes it on exit.
        command_timeout: bound on every HCI command and on opening the transport, in seconds.
    """

    def __init__(
        self,
        device: Device | None = None,
        *,
        transport: str | None = None,
        name: str = DEFAULT_NAME,
        address: str = DEFAULT_ADDRESS,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    ) -> None:
        if (device is None) == (transport is None):
            raise ValueError("give exactly one of device= or transport=")
        self._given_device = device
        self._transport_spec = transport
        self._name = name
        self._address = address
        self._command_timeout = command_timeout
        self._device: Device | None = None
        self._transport: Transport | None = None
        self._scan_listeners: list[AdvertisementListener] = []
        self._scan_lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()
        self._seen: dict[str, hci.Address] = {}

        # Imported here: the backends import this module.
        from gateway.bleak_bumble.client import BumbleClient
        from gateway.bleak_bumble.scanner import BumbleScanner

        self.scanner_backend: type[BaseBleakScanner] = type(
            "BumbleScanner", (BumbleScanner,), {"central": self}
        )
        """A ``BaseBleakScanner`` subclass bound to this central, for ``BleakScanner(backend=)``."""
        self.client_backend: type[BaseBleakClient] = type(
            "BumbleClient", (BumbleClient,), {"central": self}
        )
        """A ``BaseBleakClient`` subclass bound to this central, for ``BleakClient(backend=)``."""

    @classmethod
    def from_transport(
        cls,
        spec: str,
        *,
        name: str = DEFAULT_NAME,
        address: str = DEFAULT_ADDRESS,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    ) -> Self:
        """A central on the controller behind a bumble transport spec (opened on ``async with``)."""
        return cls(transport=spec, name=name, address=address, command_timeout=command_timeout)

    @property
    def device(self) -> Device:
        """The bumble Device in use; only inside ``async with``."""
        if self._device is None:
            raise BumbleCentralStateError("the central is not open: use it as `async with`")
        return self._device

    async def __aenter__(self) -> Self:
        try:
            async with asyncio.timeout(self._command_timeout):
                if self._transport_spec is not None:
                    self._device = await self._open_transport_device(self._transport_spec)
                else:
                    assert self._given_device is not None
                    self._device = self._given_device
                    if not self._device.powered_on:
                        await self._device.power_on()
        except TimeoutError as exc:
            await self._close_transport()
            raise BumbleTransportError(
                self._transport_spec or "<device>", "the controller did not answer"
            ) from exc
        except BaseException:
            await self._close_transport()
            raise
        self._device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        logger.info("bumble central %s ready", address_key(self._device.random_address))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        device, self._device = self._device, None
        if device is None:
            return
        device.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        self._scan_listeners.clear()
        try:
            async with asyncio.timeout(self._command_timeout):
                if device.is_scanning:
                    await device.stop_scanning()
                for connection in list(device.connections.values()):
                    await connection.disconnect()
                if self._transport is not None:
                    await device.power_off()
        except (TimeoutError, core.BaseBumbleError) as exc:
            logger.warning("bumble central did not close cleanly: %s", exc)
        finally:
            await self._close_transport()

    async def _open_transport_device(self, spec: str) -> Device:
        try:
            self._transport = await open_transport(spec)
        except (OSError, ValueError, core.BaseBumbleError) as exc:
            raise BumbleTransportError(spec, str(exc) or type(exc).__name__) from exc
        device = Device.with_hci(
            self._name,
            hci.Address(self._address),
            self._transport.source,
            self._transport.sink,
        )
        await device.power_on()
        return device

    async def _close_transport(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()

    # --- scanning, shared by every scanner backend bound to this central -----------------

    async def add_scan_listener(self, listener: AdvertisementListener) -> None:
        """Deliver every advertisement to ``listener``; scanning runs while any listener is."""
        async with self._scan_lock:
            self._scan_listeners.append(listener)
            if not self.device.is_scanning:
                await self._command(self.device.start_scanning(active=True), "start scanning")

    async def remove_scan_listener(self, listener: AdvertisementListener) -> None:
        async with self._scan_lock:
            if listener in self._scan_listeners:
                self._scan_listeners.remove(listener)
            device = self._device
            if not self._scan_listeners and device is not None and device.is_scanning:
                await self._command(device.stop_scanning(), "stop scanning")

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        self._seen[address_key(advertisement.address)] = advertisement.address
        for listener in list(self._scan_listeners):
            listener(advertisement)

    # --- connecting ---------------------------------------------------------------------

    async def resolve_address(self, address: str, scan_timeout: float) -> hci.Address:
        """The bumble address of a device given by bleak address string, scanning if unknown."""
        key = address.upper()
        if key in self._seen:
            return self._seen[key]
        found: asyncio.Future[hci.Address] = asyncio.get_running_loop().create_future()

        def on_advertisement(advertisement: Advertisement) -> None:
            if address_key(advertisement.address) == key and not found.done():
                found.set_result(advertisement.address)

        await self.add_scan_listener(on_advertisement)
        try:
            async with asyncio.timeout(scan_timeout):
                return await found
        except TimeoutError as exc:
            raise BleakDeviceNotFoundError(
                address, f"device with address {address} was not found"
            ) from exc
        finally:
            await self.remove_scan_listener(on_advertisement)

    async def connect(self, address: hci.Address, connect_timeout: float) -> Connection:
        """An LE connection to ``address``; one connection attempt at a time (HCI allows one)."""
        async with self._connect_lock:
            try:
                return await keep_cancellation(
                    self.device.connect(
                        address, transport=core.PhysicalTransport.LE, timeout=connect_timeout
                    )
                )
            except core.TimeoutError as exc:
                raise TimeoutError(f"connecting to {address_key(address)} timed out") from exc
            except core.BaseBumbleError as exc:
                raise translate_error(exc, f"connect to {address_key(address)}") from exc

    async def _command(self, awaitable: Awaitable[object], operation: str) -> None:
        try:
            async with asyncio.timeout(self._command_timeout):
                await keep_cancellation(awaitable)
        except (TimeoutError, core.BaseBumbleError) as exc:
            raise BumbleBackendError(f"{operation} failed: {exc or 'timed out'}") from exc
