"""bleak client backend over a :class:`~gateway.bleak_bumble.central.BumbleCentral`.

Pairing follows bleak's contract on BlueZ (``gateway.bleak_bumble.security``): ``pair=True``
pairs and bonds while connecting, a bonded device's link is encrypted with the stored keys at
every connection, ``pair()`` secures an open connection and ``unpair()`` forgets the bond and
disconnects.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any, ClassVar

from bleak.args import SizedBuffer
from bleak.assigned_numbers import gatt_char_props_to_strs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bumble import core, gatt
from bumble.device import Connection, Peer
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy

from gateway.bleak_bumble.cancellation import keep_cancellation
from gateway.bleak_bumble.central import BumbleCentral, BumbleDeviceDetails, address_key
from gateway.bleak_bumble.errors import BumblePairingError, translate_error
from gateway.bleak_bumble.scanner import bleak_uuid
from gateway.bleak_bumble.security import forget_bond, secure_link

logger = logging.getLogger(__name__)

#: The ATT MTU the client asks for after connecting (the server may grant less).
REQUESTED_MTU = 247
_CCCD = gatt.GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR


class BumbleClient(BaseBleakClient):
    """``BaseBleakClient`` on a bumble central. Use ``central.client_backend``, not this class."""

    central: ClassVar[BumbleCentral]

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        services: set[str] | None = None,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float,
        **kwargs: Any,  # bleak passes platform-specific args (bluez=, winrt=): not ours
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._details: BumbleDeviceDetails | None = None
        self._name: str | None = None
        if isinstance(address_or_ble_device, BLEDevice):
            self._name = address_or_ble_device.name
            if isinstance(address_or_ble_device.details, BumbleDeviceDetails):
                self._details = address_or_ble_device.details
        self._requested_services = services
        self._connection: Connection | None = None
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    # --- connection -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        if self._connection is None:
            raise BleakError("Not connected")
        return self._connection.att_mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect, secure the link, exchange the MTU and discover the services.

        The link is encrypted with the stored bond when there is one, else paired (and bonded)
        when ``pair`` is true. A failure on the way drops the connection: a half-set-up link
        (unencrypted where encryption was asked for) is never handed to the caller.
        """
        if self._connection is not None:
            return
        address = (
            self._details.address
            if self._details is not None
            else await self.central.resolve_address(self.address, self._timeout)
        )
        connection = await self.central.connect(address, self._timeout)
        self._connection = connection
        self._subscribers = {}
        connection.on(
            Connection.EVENT_DISCONNECTION, functools.partial(self._on_disconnection, connection)
        )
        logger.info("connected to %s", address_key(address))
        step = "securing the link"
        try:
            async with asyncio.timeout(self._timeout):
                security = await secure_link(connection, pair=pair)
                logger.info("link with %s: %s", self.address, security.value)
                step = "MTU exchange"
                await keep_cancellation(Peer(connection).request_mtu(REQUESTED_MTU))
                step = "service discovery"
                self.services = await keep_cancellation(self._discover_services(connection))
        except BaseException as exc:
            await self._drop(connection)
            if isinstance(exc, TimeoutError):
                raise TimeoutError(f"{step} with {self.address} timed out") from exc
            translated = translate_error(exc, f"{step} with {self.address}")
            if translated is exc:
                raise
            raise translated from exc

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await connection.disconnect()
        except BaseException as exc:
            if self._connection is None:  # the link dropped anyway: that is what was asked
                return
            translated = translate_error(exc, f"disconnect from {self.address}")
            if translated is exc:
                raise
            raise translated from exc

    async def _drop(self, connection: Connection) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await connection.disconnect()
        except (TimeoutError, core.BaseBumbleError) as exc:
            logger.warning("could not disconnect from %s: %s", self.address, exc)

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        if self._connection is not connection:
            return
        logger.info("disconnected from %s (reason 0x%02X)", self.address, reason)
        self._connection = None
        self._subscribers = {}
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair with the connected device and bond; with a bond already, encrypt with it.

        Pairing is "Just Works" as the central's pairing configuration says; the arguments
        other backends take (e.g. WinRT's protection level) have no meaning here and are
        ignored, as BlueZ ignores them.
        """
        connection = self._require_connection()
        try:
            async with asyncio.timeout(self._timeout):
                security = await secure_link(connection, pair=True)
        except TimeoutError as exc:
            raise BumblePairingError(self.address, "pairing", "timed out") from exc
        logger.info("link with %s: %s", self.address, security.value)

    async def unpair(self) -> None:
        """Forget the bond with the device and disconnect (bleak: "Unpairing will also
        disconnect the device"). Without a bond there is nothing to forget: it only
        disconnects. The device keeps its side of the bond, as a real one does."""
        device = self.central.device
        addresses = {self.address.upper()}
        if self._connection is not None:
            # After pairing, the connection knows the peer by its identity address.
            addresses.add(address_key(self._connection.peer_address))
        try:
            async with asyncio.timeout(self._timeout):
                forgotten = 0
                for address in addresses:
                    forgotten += await forget_bond(device, address)
        except BaseException as exc:
            translated = translate_error(exc, f"unpairing {self.address}")
            if translated is exc:
                raise
            raise translated from exc
        if not forgotten:
            logger.info("unpair: no bond with %s to forget", self.address)
        await self.disconnect()

    # --- services ---------------------------------------------------------------------------

    async def _discover_services(self, connection: Connection) -> BleakGATTServiceCollection:
        client = connection.gatt_client
        collection = BleakGATTServiceCollection()
        for service_proxy in await client.discover_services():
            service_uuid = bleak_uuid(service_proxy.uuid)
            if (
                self._requested_services is not None
                and service_uuid not in self._requested_services
            ):
                continue
            service = BleakGATTService(service_proxy, service_proxy.handle, service_uuid)
            collection.add_service(service)
            for char_proxy in await client.discover_characteristics((), service_proxy):
                characteristic = BleakGATTCharacteristic(
                    char_proxy,
                    char_proxy.handle,
                    bleak_uuid(char_proxy.uuid),
                    list(gatt_char_props_to_strs(int(char_proxy.properties))),
                    functools.partial(_max_write_without_response_size, connection),
                    service,
                )
                collection.add_characteristic(characteristic)
                for desc_proxy in await client.discover_descriptors(char_proxy):
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            desc_proxy,
                            desc_proxy.handle,
                            bleak_uuid(desc_proxy.type),
                            characteristic,
                        )
                    )
        return collection

    # --- I/O ----------------------------------------------------------------------------------

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise BleakError("Not connected")
        return self._connection

    async def _run(self, operation: str, coro: Any) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                return await keep_cancellation(coro)
        except BaseException as exc:
            translated = translate_error(exc, operation)
            if translated is exc:
                raise
            raise translated from exc

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return await self._read(characteristic.handle, use_cached, f"read of {characteristic.uuid}")

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return await self._read(
            descriptor.handle, use_cached, f"read of descriptor {descriptor.handle}"
        )

    async def _read(self, handle: int, use_cached: bool, operation: str) -> bytearray:
        client = self._require_connection().gatt_client
        if use_cached and handle in client.cached_values:
            return bytearray(client.cached_values[handle][1])
        value = await self._run(operation, client.read_value(handle))
        return bytearray(value)

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        client = self._require_connection().gatt_client
        await self._run(
            f"write of {characteristic.uuid}",
            client.write_value(characteristic.handle, bytes(data), with_response=response),
        )

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        client = self._require_connection().gatt_client
        await self._run(
            f"write of descriptor {descriptor.handle}",
            client.write_value(descriptor.handle, bytes(data), with_response=True),
        )

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        connection = self._require_connection()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        if not {"notify", "indicate"} & set(characteristic.properties):
            raise BleakError(f"characteristic {characteristic.uuid} does not notify nor indicate")
        if not any(
            isinstance(d.obj, DescriptorProxy) and d.obj.type == _CCCD
            for d in characteristic.descriptors
        ):
            raise BleakError(f"characteristic {characteristic.uuid} has no CCCD (0x2902)")
        if characteristic.handle in self._subscribers:
            raise BleakError(f"notifications on {characteristic.uuid} are already started")
        subscriber = functools.partial(_deliver, callback, characteristic.uuid)
        self._subscribers[characteristic.handle] = subscriber
        try:
            # bumble writes the CCCD with the notify bit when the characteristic notifies,
            # else with the indicate bit, and confirms every indication it delivers.
            await self._run(
                f"start_notify on {characteristic.uuid}",
                connection.gatt_client.subscribe(proxy, subscriber, prefer_notify=True),
            )
        except BaseException:
            self._subscribers.pop(characteristic.handle, None)
            _forget_subscriber(connection, characteristic.handle, subscriber)
            raise

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        connection = self._require_connection()
        subscriber = self._subscribers.pop(characteristic.handle, None)
        if subscriber is None:
            return
        await self._run(
            f"stop_notify on {characteristic.uuid}",
            connection.gatt_client.unsubscribe(characteristic.obj, subscriber),
        )


def _forget_subscriber(
    connection: Connection, handle: int, subscriber: Callable[[bytes], None]
) -> None:
    # bumble registers the subscriber before it writes the CCCD and keeps it when the write is
    # refused (e.g. Insufficient Encryption before pairing): a later start_notify on the same
    # connection would then deliver every value twice. Take it out again, without touching the
    # CCCD (the write failed: nothing is enabled on the device).
    client = connection.gatt_client
    for table in (client.notification_subscribers, client.indication_subscribers):
        subscribers = table.get(handle)
        if subscribers is None:
            continue
        subscribers.discard(subscriber)
        # bumble also subscribes the characteristic proxy itself; alone, it is stale.
        if all(isinstance(s, CharacteristicProxy) for s in subscribers):
            del table[handle]


def _max_write_without_response_size(connection: Connection) -> int:
    return connection.att_mtu - 3


def _deliver(callback: NotifyCallback, char_uuid: str, value: bytes) -> None:
    # Called by bumble while it handles the PDU (before it confirms an indication): an
    # exception here must not break bumble's receive path, so it is logged, not raised.
    try:
        callback(bytearray(value))
    except Exception:
        logger.exception("notification callback for %s raised", char_uuid)
