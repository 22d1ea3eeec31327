"""What every simulated BLE peripheral shares: identity, advertising, connection lifecycle.

A subclass builds its own GATT services and behaviour; this base adds Device Information,
advertises (and advertises again after every disconnection), tracks the connection, runs
background tasks, delivers confirmed indications and notifications, and keeps the device's own
clock (``device_simulators.device_clock``) when the subclass exposes one.

Security: every simulator accepts pairing ("Just Works", bonding: the keys of each central are
kept in the Device's keystore, so a bonded central's next link is encrypted without pairing
again). A subclass built with ``require_encryption=True`` hands the base the characteristics
whose subscription needs an encrypted link (``encrypted_subscriptions``): their CCCD writes are
then refused with ATT "Insufficient Encryption" (0x0F) until the link is encrypted, as on real
meters (SPEC.md 5.1); it protects its own values (reads, writes) with bumble's permissions.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

from bumble import gatt, hci
from bumble.core import AdvertisingData
from bumble.device import Connection, Device
from bumble.keys import PairingKeys
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.profiles.device_information_service import DeviceInformationService

from device_simulators.device_clock import DeviceClock
from device_simulators.gatt import indicate_confirmed, is_subscribed, notify_if_subscribed

logger = logging.getLogger(__name__)

MAX_ADVERTISING_DATA = 31
COMMAND_TIMEOUT = 5.0


@dataclass(frozen=True)
class PeripheralIdentity:
    """What a device says about itself: advertised name and Device Information strings."""

    name: str
    manufacturer: str
    model: str
    serial_number: str
    firmware_revision: str


class SimulatedPeripheral:
    """Base of the simulators: ``async with`` runs the peripheral on its bumble ``Device``.

    Subclasses set ``KIND`` (for logs), ``SERVICE_UUID16`` and ``APPEARANCE`` (advertised), pass
    their services to ``__init__`` and may override the hooks ``_attach``, ``_detach`` and
    ``_on_disconnected``.

    ``require_encryption``: the characteristics in ``encrypted_subscriptions`` (part of
    ``services``) get a CCCD that only an encrypted link may write (0x0F otherwise).
    """

    KIND: ClassVar[str] = "device"
    SERVICE_UUID16: ClassVar[int]
    APPEARANCE: ClassVar[int]

    def __init__(
        self,
        device: Device,
        identity: PeripheralIdentity,
        services: list[gatt.Service],
        *,
        advertising_interval_ms: float,
        indication_timeout: float,
        clock: DeviceClock | None = None,
        require_encryption: bool = False,
        encrypted_subscriptions: Sequence[gatt.Characteristic] = (),
    ) -> None:
        self._device = device
        self._clock = clock
        self.require_encryption = require_encryption
        if require_encryption:
            for characteristic in encrypted_subscriptions:
                characteristic.descriptors = [
                    *characteristic.descriptors,
                    encrypted_cccd(device, characteristic),
                ]
        device.pairing_config_factory = _just_works_bonding
        self.identity = identity
        self._advertising_interval_ms = advertising_interval_ms
        self._indication_timeout = indication_timeout
        self._advertising_data, self._scan_response = advertising_payloads(
            identity.name, self.SERVICE_UUID16, self.APPEARANCE, self.KIND
        )
        self._services = [
            *services,
            DeviceInformationService(
                manufacturer_name=identity.manufacturer,
                model_number=identity.model,
                serial_number=identity.serial_number,
                firmware_revision=identity.firmware_revision,
            ),
        ]
        self._tasks: set[asyncio.Task[None]] = set()
        self._connection: Connection | None = None
        self._running = False
        self._services_added = False
        self._pairings = 0

    @property
    def address(self) -> str:
        """The address as bleak shows it (upper case, no type suffix)."""
        return self._device.random_address.to_string(with_type_qualifier=False).upper()

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    @property
    def clock(self) -> DeviceClock | None:
        """The device's own wall clock, when it exposes one over GATT (None otherwise)."""
        return self._clock

    @property
    def pairing_count(self) -> int:
        """Pairings completed with centrals since the simulator was built (a central that
        reuses its bond to encrypt a later link does not pair again, so it does not count)."""
        return self._pairings

    @property
    def is_encrypted(self) -> bool:
        """Whether the current link (if any) is encrypted."""
        return self._connection is not None and self._connection.is_encrypted

    async def bonds(self) -> list[tuple[str, PairingKeys]]:
        """The bonds the device keeps: (central's identity address, keys)."""
        keystore = self._device.keystore
        if keystore is None:
            return []
        return await keystore.get_all()

    async def forget_bonds(self) -> None:
        """Forget every bond, as a device does after a factory reset: a central that kept its
        side of a bond can no longer encrypt a link with it ("key missing")."""
        keystore = self._device.keystore
        if keystore is not None:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                await keystore.delete_all()
        logger.info("%s %s: bonds forgotten", self.KIND, self.identity.name)

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if not self._services_added:
            self._device.add_services(self._services)
            self._services_added = True
        self._device.on(Device.EVENT_CONNECTION, self._on_connection)
        self._attach()
        self._running = True
        await self._start_advertising()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._running = False
        self._device.remove_listener(Device.EVENT_CONNECTION, self._on_connection)
        self._detach()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        async with asyncio.timeout(COMMAND_TIMEOUT):
            if self._connection is not None:
                await self._connection.disconnect()
            await self._device.stop_advertising()

    def _attach(self) -> None:
        """Hook: register the subclass's listeners (on entry)."""

    def _detach(self) -> None:
        """Hook: remove them (on exit)."""

    def _on_disconnected(self, connection: Connection, reason: int) -> None:
        """Hook: a central went away (before the peripheral advertises again)."""

    async def _start_advertising(self) -> None:
        async with asyncio.timeout(COMMAND_TIMEOUT):
            await self._device.start_advertising(
                advertising_data=self._advertising_data,
                scan_response_data=self._scan_response,
                advertising_interval_min=self._advertising_interval_ms,
                advertising_interval_max=self._advertising_interval_ms,
            )
        logger.debug("%s %s advertising", self.KIND, self.identity.name)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "%s %s: task %s failed",
                self.KIND,
                self.identity.name,
                task.get_name(),
                exc_info=task.exception(),
            )

    def _on_connection(self, connection: Connection) -> None:
        if connection.role != hci.Role.PERIPHERAL:
            return
        logger.info("%s %s connected to %s", self.KIND, self.identity.name, connection.peer_address)
        self._connection = connection
        connection.on(
            Connection.EVENT_DISCONNECTION,
            lambda reason: self._on_disconnection(connection, reason),
        )
        connection.on(Connection.EVENT_PAIRING, lambda _keys: self._on_pairing(connection))
        connection.on(
            Connection.EVENT_PAIRING_FAILURE,
            lambda reason: logger.info(
                "%s %s: pairing with %s failed (%s)",
                self.KIND,
                self.identity.name,
                connection.peer_address,
                reason,
            ),
        )
        connection.on(
            Connection.EVENT_CONNECTION_ENCRYPTION_CHANGE,
            lambda: logger.info(
                "%s %s: link encryption %s",
                self.KIND,
                self.identity.name,
                "on" if connection.is_encrypted else "off",
            ),
        )

    def _on_pairing(self, connection: Connection) -> None:
        self._pairings += 1
        logger.info("%s %s paired with %s", self.KIND, self.identity.name, connection.peer_address)

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        if self._connection is connection:
            self._connection = None
        self._on_disconnected(connection, reason)
        logger.info("%s %s disconnected (reason 0x%02X)", self.KIND, self.identity.name, reason)
        if self._running:
            self._spawn(self._start_advertising(), f"{self.KIND}-readvertise")

    # --- GATT ---------------------------------------------------------------------------------

    def _subscribed(
        self, connection: Connection, characteristic: gatt.Characteristic, bit: int
    ) -> bool:
        return is_subscribed(self._device, connection, characteristic, bit)

    async def _indicate_to(
        self, connection: Connection, characteristic: gatt.Characteristic, payload: bytes
    ) -> bool:
        """Indicate and wait for the confirmation (False: not confirmed, link gone or late)."""
        return await indicate_confirmed(
            self._device, connection, characteristic, payload, self._indication_timeout
        )

    async def _notify_to(
        self, connection: Connection, characteristic: gatt.Characteristic, payload: bytes
    ) -> bool:
        """Notify if the central enabled notifications (False: it did not, or the link is gone)."""
        return await notify_if_subscribed(
            self._device, connection, characteristic, payload, COMMAND_TIMEOUT
        )


def encrypted_cccd(device: Device, characteristic: gatt.Characteristic) -> gatt.Descriptor:
    """A Client Characteristic Configuration descriptor that only an encrypted link may write.

    bumble gives every notifying or indicating characteristic a CCCD anyone may write, unless
    the characteristic brings its own: this one is backed by the same server bookkeeping
    (``Server.make_descriptor_value``), so subscriptions work as before once the link is
    encrypted. Reading it stays open, as on nRF5 GLS meters (``SEC_MODE_SET_ENC_NO_MITM`` on the
    CCCD write only).
    """
    return gatt.Descriptor(
        gatt.GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
        gatt.Descriptor.Permissions.READABLE
        | gatt.Descriptor.Permissions.WRITEABLE
        | gatt.Descriptor.Permissions.WRITE_REQUIRES_ENCRYPTION,
        device.gatt_server.make_descriptor_value(characteristic),
    )


def _just_works_bonding(_connection: Connection) -> PairingConfig:
    # Health devices have no keyboard and at most a number display: "Just Works" (no MITM
    # protection), LE Secure Connections, and a bond kept for each central.
    return PairingConfig(
        sc=True,
        mitm=False,
        bonding=True,
        delegate=PairingDelegate(io_capability=PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT),
    )


def advertising_payloads(
    name: str, service_uuid16: int, appearance: int, kind: str = "device"
) -> tuple[bytes, bytes]:
    """Advertising data (flags, service UUID, appearance, name) and scan response (the complete
    name when the advertising data only has room for a shortened one).

    Everything a gateway filters on is in the advertising data itself: bumble's virtual
    controller never sends scan response data (it repeats the advertising data instead).
    """
    encoded_name = name.encode("utf-8")
    if not encoded_name:
        raise ValueError(f"the {kind} needs a name")
    base = [
        (AdvertisingData.Type.FLAGS, bytes([0x06])),  # LE General Discoverable, no BR/EDR
        (
            AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            struct.pack("<H", service_uuid16),
        ),
        (AdvertisingData.Type.APPEARANCE, struct.pack("<H", appearance)),
    ]
    complete = (AdvertisingData.Type.COMPLETE_LOCAL_NAME, encoded_name)
    if len(encoded_name) > MAX_ADVERTISING_DATA - 2:
        raise ValueError(f"{kind} name too long to advertise: {name!r}")
    with_name = bytes(AdvertisingData([*base, complete]))
    if len(with_name) <= MAX_ADVERTISING_DATA:
        return with_name, b""
    room = MAX_ADVERTISING_DATA - len(bytes(AdvertisingData(base))) - 2
    short = encoded_name[:room].decode("utf-8", errors="ignore").encode("utf-8")
    shortened = (AdvertisingData.Type.SHORTENED_LOCAL_NAME, short)
    return bytes(AdvertisingData([*base, shortened])), bytes(AdvertisingData([complete]))
