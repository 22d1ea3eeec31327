"""A blood-pressure cuff simulator: a real bumble GATT server speaking the SIG profiles.

Services: Blood Pressure 0x1810 (Blood Pressure Measurement 0x2A35, indicate; Blood Pressure
Feature 0x2A49, read), Device Information 0x180A (manufacturer, model, serial number, firmware
revision) and Battery 0x180F (level 0x2A19, read + notify). It advertises its name and the
0x1810 service UUID, connectable, and advertises again after every disconnection.

Like a real cuff it keeps measurements in memory until a central confirms their indication:
``measure()`` stores the (already encoded) Blood Pressure Measurement payload and delivers it
if a central is subscribed; otherwise, or if the link drops before the confirmation, the
record stays stored and is delivered, oldest first, when a central subscribes next::

    cuff = BloodPressureCuff(await radio.peripheral_device(identity.name), identity,
                             features=0x0001, battery_level=87)
    async with cuff:
        delivered = await cuff.measure(encoded_bpm)
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from bumble import gatt, hci
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.profiles.device_information_service import DeviceInformationService

from device_simulators.gatt import indicate_confirmed, is_subscribed, read_not_permitted

logger = logging.getLogger(__name__)

BLOOD_PRESSURE_SERVICE = 0x1810
BLOOD_PRESSURE_MEASUREMENT = 0x2A35
BLOOD_PRESSURE_FEATURE = 0x2A49
BATTERY_SERVICE = 0x180F
BATTERY_LEVEL = 0x2A19
#: GAP Appearance "Blood Pressure: Generic" (category 0x00E, sub-category 0x00).
APPEARANCE_GENERIC_BLOOD_PRESSURE = 0x0E << 6
_MAX_ADVERTISING_DATA = 31
_COMMAND_TIMEOUT = 5.0


@dataclass(frozen=True)
class CuffIdentity:
    """What the cuff says about itself: advertised name and Device Information strings."""

    name: str
    manufacturer: str
    model: str
    serial_number: str
    firmware_revision: str


@dataclass(eq=False)
class _Record:
    payload: bytes
    confirmed: bool = field(default=False)


class BloodPressureCuff:
    """A simulated BLE blood-pressure cuff on a bumble ``Device``; ``async with`` runs it.

    Args:
        device: a powered-on bumble Device that is not used for anything else (its Device
            name should be ``identity.name``: that is what GAP's Device Name shows).
        identity: name and Device Information strings.
        features: Blood Pressure Feature bits (uint16).
        battery_level: initial Battery Level, 0..100 %.
        advertising_interval_ms: advertising interval (short by default, for quick discovery).
        indication_timeout: how long one indication may wait for the central's confirmation.
    """

    def __init__(
        self,
        device: Device,
        identity: CuffIdentity,
        *,
        features: int = 0,
        battery_level: int = 100,
        advertising_interval_ms: float = 100.0,
        indication_timeout: float = 5.0,
    ) -> None:
        if not 0 <= features <= 0xFFFF:
            raise ValueError(f"Blood Pressure Feature must fit 16 bits, got {features:#x}")
        _check_battery_level(battery_level)
        self._device = device
        self.identity = identity
        self.features = features
        self._battery_level = battery_level
        self._advertising_interval_ms = advertising_interval_ms
        self._indication_timeout = indication_timeout
        self._advertising_data, self._scan_response = _advertising_payloads(identity.name)

        self._measurement = gatt.Characteristic(
            UUID.from_16_bits(BLOOD_PRESSURE_MEASUREMENT, "Blood Pressure Measurement"),
            gatt.Characteristic.Properties.INDICATE,
            gatt.Characteristic.Permissions(0),
            # bumble does not enforce the absence of READABLE: refuse reads like a real cuff.
            gatt.CharacteristicValue(read=read_not_permitted),
        )
        self._battery = gatt.Characteristic(
            gatt.GATT_BATTERY_LEVEL_CHARACTERISTIC,
            gatt.Characteristic.Properties.READ | gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.READABLE,
            gatt.CharacteristicValue(read=lambda _connection: bytes([self._battery_level])),
        )
        self._services = [
            gatt.Service(
                gatt.GATT_BLOOD_PRESSURE_SERVICE,
                [
                    self._measurement,
                    gatt.Characteristic(
                        UUID.from_16_bits(BLOOD_PRESSURE_FEATURE, "Blood Pressure Feature"),
                        gatt.Characteristic.Properties.READ,
                        gatt.Characteristic.READABLE,
                        struct.pack("<H", features),
                    ),
                ],
            ),
            DeviceInformationService(
                manufacturer_name=identity.manufacturer,
                model_number=identity.model,
                serial_number=identity.serial_number,
                firmware_revision=identity.firmware_revision,
            ),
            gatt.Service(gatt.GATT_BATTERY_SERVICE, [self._battery]),
        ]
        self._memory: deque[_Record] = deque()
        self._flush_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._connection: Connection | None = None
        self._running = False
        self._services_added = False

    # --- state ------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """The cuff's address as bleak shows it (upper case, no type suffix)."""
        return self._device.random_address.to_string(with_type_qualifier=False).upper()

    @property
    def stored_count(self) -> int:
        """Measurements in memory, not yet confirmed by a central."""
        return len(self._memory)

    @property
    def battery_level(self) -> int:
        return self._battery_level

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if not self._services_added:
            self._device.add_services(self._services)
            self._services_added = True
        self._device.on(Device.EVENT_CONNECTION, self._on_connection)
        self._measurement.on(gatt.Characteristic.EVENT_SUBSCRIPTION, self._on_subscription)
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
        self._measurement.remove_listener(
            gatt.Characteristic.EVENT_SUBSCRIPTION, self._on_subscription
        )
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        async with asyncio.timeout(_COMMAND_TIMEOUT):
            if self._connection is not None:
                await self._connection.disconnect()
            await self._device.stop_advertising()

    async def _start_advertising(self) -> None:
        async with asyncio.timeout(_COMMAND_TIMEOUT):
            await self._device.start_advertising(
                advertising_data=self._advertising_data,
                scan_response_data=self._scan_response,
                advertising_interval_min=self._advertising_interval_ms,
                advertising_interval_max=self._advertising_interval_ms,
            )
        logger.debug("cuff %s advertising", self.identity.name)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "cuff %s: task %s failed",
                self.identity.name,
                task.get_name(),
                exc_info=task.exception(),
            )

    def _on_connection(self, connection: Connection) -> None:
        if connection.role != hci.Role.PERIPHERAL:
            return
        logger.info("cuff %s connected to %s", self.identity.name, connection.peer_address)
        self._connection = connection
        connection.on(
            Connection.EVENT_DISCONNECTION,
            lambda reason: self._on_disconnection(connection, reason),
        )

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        if self._connection is connection:
            self._connection = None
        logger.info("cuff %s disconnected (reason 0x%02X)", self.identity.name, reason)
        if self._running:
            self._spawn(self._start_advertising(), "cuff-readvertise")

    def _on_subscription(self, bearer: object, notify: bool, indicate: bool) -> None:
        if indicate and self._running:
            self._spawn(self._flush(), "cuff-deliver-stored")

    # --- behaviour ---------------------------------------------------------------------------

    async def measure(self, payload: bytes) -> bool:
        """Store an encoded Blood Pressure Measurement and deliver it if a central is subscribed.

        Returns True once the central confirmed this measurement; False when it stays in memory
        (no subscribed central, or the link dropped / the confirmation timed out), to be
        delivered at the next subscription.
        """
        if not payload:
            raise ValueError("a Blood Pressure Measurement payload cannot be empty")
        record = _Record(bytes(payload))
        self._memory.append(record)
        await self._flush()
        return record.confirmed

    async def set_battery_level(self, level: int) -> None:
        """Change the battery level and notify a subscribed central."""
        _check_battery_level(level)
        self._battery_level = level
        async with asyncio.timeout(_COMMAND_TIMEOUT):
            await self._device.notify_subscribers(self._battery)

    async def disconnect(self) -> None:
        """End the current connection from the cuff's side (as cuffs do after a transfer)."""
        connection = self._connection
        if connection is not None:
            async with asyncio.timeout(_COMMAND_TIMEOUT):
                await connection.disconnect()

    async def _flush(self) -> None:
        async with self._flush_lock:
            while self._memory:
                connection = self._subscribed_connection()
                if connection is None:
                    return
                record = self._memory[0]
                if not await self._indicate(connection, record.payload):
                    return
                self._memory.popleft()
                record.confirmed = True

    def _subscribed_connection(self) -> Connection | None:
        connection = self._connection
        indicate = gatt.ClientCharacteristicConfigurationBits.INDICATION
        if connection is None or not is_subscribed(
            self._device, connection, self._measurement, indicate
        ):
            return None
        return connection

    async def _indicate(self, connection: Connection, payload: bytes) -> bool:
        confirmed = await indicate_confirmed(
            self._device, connection, self._measurement, payload, self._indication_timeout
        )
        if not confirmed:
            logger.info("cuff %s: indication not confirmed, record kept", self.identity.name)
        return confirmed


def _check_battery_level(level: int) -> None:
    if not 0 <= level <= 100:
        raise ValueError(f"battery level must be 0..100 %, got {level}")


def _advertising_payloads(name: str) -> tuple[bytes, bytes]:
    """Advertising data (flags, 0x1810, appearance, name) and scan response (complete name when
    the advertising data only has room for a shortened one).

    Everything a gateway filters on is in the advertising data itself: bumble's virtual
    controller never sends scan response data (it repeats the advertising data instead).
    """
    encoded_name = name.encode("utf-8")
    if not encoded_name:
        raise ValueError("the cuff needs a name")
    base = [
        (AdvertisingData.Type.FLAGS, bytes([0x06])),  # LE General Discoverable, no BR/EDR
        (
            AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            struct.pack("<H", BLOOD_PRESSURE_SERVICE),
        ),
        (AdvertisingData.Type.APPEARANCE, struct.pack("<H", APPEARANCE_GENERIC_BLOOD_PRESSURE)),
    ]
    complete = (AdvertisingData.Type.COMPLETE_LOCAL_NAME, encoded_name)
    if len(encoded_name) > _MAX_ADVERTISING_DATA - 2:
        raise ValueError(f"cuff name too long to advertise: {name!r}")
    with_name = bytes(AdvertisingData([*base, complete]))
    if len(with_name) <= _MAX_ADVERTISING_DATA:
        return with_name, b""
    room = _MAX_ADVERTISING_DATA - len(bytes(AdvertisingData(base))) - 2
    short = encoded_name[:room].decode("utf-8", errors="ignore").encode("utf-8")
    shortened = (AdvertisingData.Type.SHORTENED_LOCAL_NAME, short)
    return bytes(AdvertisingData([*base, shortened])), bytes(AdvertisingData([complete]))
