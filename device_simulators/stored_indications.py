"""Measurements a device keeps until a central confirms their indication, and the base of the
simulators whose one measurement characteristic is delivered that way.

Scales, pulse oximeters, thermometers and cuffs measure whether or not a gateway listens. A real
device keeps each measurement in memory and sends it by *indication* as soon as a central has
subscribed; it forgets the record only when the central confirmed that indication, so a link that
drops mid-delivery loses nothing (the record comes again next time: the gateway's deterministic
reading ids make that harmless). Stored records go out oldest first. Memory is bounded like a real
device's: beyond ``capacity`` the oldest record is overwritten.

``StoredIndications`` is that memory on its own (it only needs a ``deliver`` coroutine, so the
cuff could use it too); ``IndicatedMeasurementDevice`` is a ``SimulatedPeripheral`` with one
indicated measurement characteristic in its profile service, the Battery service and, with a
``clock``, a writable Current Time Service, as the SIG profiles of these devices describe them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from bumble import gatt
from bumble.core import UUID
from bumble.device import Device

from device_simulators.current_time import current_time_service
from device_simulators.device_clock import DeviceClock
from device_simulators.gatt import read_not_permitted, write_not_permitted
from device_simulators.peripheral import COMMAND_TIMEOUT, PeripheralIdentity, SimulatedPeripheral

logger = logging.getLogger(__name__)

#: Delivers one payload; True once the central confirmed it (False: nobody subscribed, link gone,
#: or no confirmation in time: the record stays stored).
Deliver = Callable[[bytes], Awaitable[bool]]


@dataclass(eq=False)
class _Record:
    payload: bytes
    confirmed: bool = False


class StoredIndications:
    """A device's measurement memory: records wait here until their indication is confirmed.

    Args:
        deliver: sends one payload to the subscribed central and says whether it was confirmed.
        capacity: most records kept (None: unbounded); a new record beyond it overwrites the
            oldest, as a full device memory does.
        name: for logs.
    """

    def __init__(self, deliver: Deliver, *, capacity: int | None = None, name: str = "device"):
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._deliver = deliver
        self._memory: deque[_Record] = deque(maxlen=capacity)
        self._lock = asyncio.Lock()
        self.name = name
        #: Records overwritten because the memory was full (never delivered).
        self.overwritten = 0

    def __len__(self) -> int:
        return len(self._memory)

    @property
    def capacity(self) -> int | None:
        return self._memory.maxlen

    async def store(self, payload: bytes) -> bool:
        """Keep ``payload`` and try to deliver everything stored; True when this one was
        confirmed, False when it stays in memory for the next subscription."""
        if not payload:
            raise ValueError("a stored measurement cannot be empty")
        record = _Record(bytes(payload))
        if self._memory.maxlen is not None and len(self._memory) == self._memory.maxlen:
            self.overwritten += 1
            logger.info("%s: memory full, oldest record overwritten", self.name)
        self._memory.append(record)
        await self.flush()
        return record.confirmed

    async def flush(self) -> None:
        """Deliver stored records oldest first until one is not confirmed (or none are left)."""
        async with self._lock:
            while self._memory:
                record = self._memory[0]
                if not await self._deliver(record.payload):
                    logger.debug("%s: %d record(s) kept for later", self.name, len(self._memory))
                    return
                record.confirmed = True
                # A record overwritten while it was on the air is already gone from memory.
                if self._memory and self._memory[0] is record:
                    self._memory.popleft()

    def clear(self) -> None:
        """Forget every stored record (a memory reset on the device)."""
        self._memory.clear()


class IndicatedMeasurementDevice(SimulatedPeripheral):
    """A simulator whose profile service has one measurement characteristic (Indicate) that
    delivers stored records on subscription, plus the subclass's own characteristics.

    Subclasses set ``KIND``, ``SERVICE_UUID16``, ``APPEARANCE`` and ``MEASUREMENT_UUID16`` and
    ``MEASUREMENT_NAME``, and pass the other characteristics of their service
    (``characteristics``, e.g. a Feature to read).

    Args:
        device: a powered-on bumble Device used for nothing else.
        identity: name and Device Information strings.
        characteristics: the rest of the profile service, after the measurement.
        battery_level: initial Battery Level 0..100 % (a Battery service 0x180F with Battery
            Level read + notify); None: the device has no Battery service.
        clock: the device's own wall clock, exposed as a writable Current Time Service.
        capacity: how many unconfirmed measurements the device keeps (None: unbounded).
        advertising_interval_ms, indication_timeout, require_encryption: as the base.
    """

    MEASUREMENT_UUID16: ClassVar[int]
    MEASUREMENT_NAME: ClassVar[str]

    def __init__(
        self,
        device: Device,
        identity: PeripheralIdentity,
        characteristics: Sequence[gatt.Characteristic] = (),
        *,
        battery_level: int | None = 100,
        clock: DeviceClock | None = None,
        capacity: int | None = None,
        advertising_interval_ms: float = 100.0,
        indication_timeout: float = 5.0,
        require_encryption: bool = False,
    ) -> None:
        if battery_level is not None:
            check_battery_level(battery_level)
        self._battery_level = battery_level
        self._measurement = gatt.Characteristic(
            UUID.from_16_bits(self.MEASUREMENT_UUID16, self.MEASUREMENT_NAME),
            gatt.Characteristic.Properties.INDICATE,
            gatt.Characteristic.Permissions(0),
            # bumble does not enforce the absence of READABLE: refuse like a real device.
            gatt.CharacteristicValue(read=read_not_permitted, write=write_not_permitted),
        )
        services = [
            gatt.Service(
                UUID.from_16_bits(self.SERVICE_UUID16), [self._measurement, *characteristics]
            )
        ]
        self._battery: gatt.Characteristic | None = None
        if battery_level is not None:
            self._battery = gatt.Characteristic(
                gatt.GATT_BATTERY_LEVEL_CHARACTERISTIC,
                gatt.Characteristic.Properties.READ | gatt.Characteristic.Properties.NOTIFY,
                gatt.Characteristic.READABLE,
                gatt.CharacteristicValue(read=lambda _connection: bytes([self._battery_level])),
            )
            services.append(gatt.Service(gatt.GATT_BATTERY_SERVICE, [self._battery]))
        if clock is not None:
            services.append(current_time_service(clock, writable=True))
        super().__init__(
            device,
            identity,
            services,
            advertising_interval_ms=advertising_interval_ms,
            indication_timeout=indication_timeout,
            clock=clock,
            require_encryption=require_encryption,
            encrypted_subscriptions=[self._measurement],
        )
        self._memory = StoredIndications(
            self._deliver, capacity=capacity, name=f"{self.KIND} {identity.name}"
        )

    # --- state ------------------------------------------------------------------------------

    @property
    def stored_count(self) -> int:
        """Measurements in memory, not yet confirmed by a central."""
        return len(self._memory)

    @property
    def overwritten_count(self) -> int:
        """Measurements lost because the memory was full."""
        return self._memory.overwritten

    @property
    def battery_level(self) -> int | None:
        return self._battery_level

    # --- behaviour ---------------------------------------------------------------------------

    async def measure_raw(self, payload: bytes) -> bool:
        """Store an encoded measurement as it goes on the air (also one a faulty device would
        send) and deliver it if a central is subscribed; True once confirmed, False when it
        stays in memory until the next subscription."""
        return await self._memory.store(bytes(payload))

    async def set_battery_level(self, level: int) -> None:
        """Change the battery level and notify a subscribed central."""
        if self._battery is None:
            raise ValueError(f"this {self.KIND} has no Battery service")
        check_battery_level(level)
        self._battery_level = level
        async with asyncio.timeout(COMMAND_TIMEOUT):
            await self._device.notify_subscribers(self._battery)

    async def disconnect(self) -> None:
        """End the current connection from the device's side (as devices do after sending)."""
        connection = self._connection
        if connection is not None:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                await connection.disconnect()

    # --- lifecycle hooks ---------------------------------------------------------------------

    def _attach(self) -> None:
        self._measurement.on(gatt.Characteristic.EVENT_SUBSCRIPTION, self._on_subscription)

    def _detach(self) -> None:
        self._measurement.remove_listener(
            gatt.Characteristic.EVENT_SUBSCRIPTION, self._on_subscription
        )

    def _on_subscription(self, _bearer: object, _notify: bool, indicate: bool) -> None:
        if indicate and self._running:
            self._spawn(self._memory.flush(), f"{self.KIND}-deliver-stored")

    async def _deliver(self, payload: bytes) -> bool:
        connection = self._connection
        if connection is None or not self._subscribed(
            connection, self._measurement, gatt.ClientCharacteristicConfigurationBits.INDICATION
        ):
            return False
        confirmed = await self._indicate_to(connection, self._measurement, payload)
        if not confirmed:
            logger.info(
                "%s %s: indication not confirmed, record kept", self.KIND, self.identity.name
            )
        return confirmed


def check_battery_level(level: int) -> None:
    if not 0 <= level <= 100:
        raise ValueError(f"battery level must be 0..100 %, got {level}")
