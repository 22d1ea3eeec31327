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

Variants seen in the field, all off by default:

* ``clock=DeviceClock(...)``: the cuff's own (possibly wrong or unset) clock, exposed as a
  writable Current Time Service 0x1805 (``device_simulators.current_time``);
* ``intermediate_cuff_pressure=True``: Intermediate Cuff Pressure 0x2A36 (notify) in the BPS;
  ``measure(payload, inflation=[...])`` notifies the cuff pressure while it inflates;
* ``measurement_property="notify"``: a cuff that *notifies* its measurements instead of
  indicating them. A measurement then counts as delivered once it is notified to a central
  that enabled notifications: there is no confirmation, so a notification lost on the way is
  lost for good, which is why the profile asks for indications;
* ``require_encryption=True``: a cuff that only delivers to a bonded central. Subscribing to
  the measurement (and to Intermediate Cuff Pressure, when present) is refused with ATT
  "Insufficient Encryption" (0x0F) until the link is encrypted, so stored measurements stay in
  memory until a paired central comes; Blood Pressure Feature, Battery, Device Information
  and the clock stay open. The cuff accepts "Just Works" pairing (``SimulatedPeripheral``).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from bumble import gatt
from bumble.core import UUID
from bumble.device import Connection, Device

from device_simulators.current_time import current_time_service
from device_simulators.device_clock import DeviceClock
from device_simulators.gatt import read_not_permitted, write_not_permitted
from device_simulators.peripheral import COMMAND_TIMEOUT, PeripheralIdentity, SimulatedPeripheral

logger = logging.getLogger(__name__)

BLOOD_PRESSURE_SERVICE = 0x1810
BLOOD_PRESSURE_MEASUREMENT = 0x2A35
BLOOD_PRESSURE_FEATURE = 0x2A49
INTERMEDIATE_CUFF_PRESSURE = 0x2A36
BATTERY_SERVICE = 0x180F
BATTERY_LEVEL = 0x2A19
#: GAP Appearance "Blood Pressure: Generic" (category 0x00E, sub-category 0x00).
APPEARANCE_GENERIC_BLOOD_PRESSURE = 0x0E << 6
#: Pause between two Intermediate Cuff Pressure notifications (a cuff inflating).
INFLATION_STEP = 0.02

MeasurementProperty = Literal["indicate", "notify"]


#: A cuff's identity: the name it advertises and its Device Information strings.
CuffIdentity = PeripheralIdentity


@dataclass(eq=False)
class _Record:
    payload: bytes
    confirmed: bool = field(default=False)


class BloodPressureCuff(SimulatedPeripheral):
    """A simulated BLE blood-pressure cuff on a bumble ``Device``; ``async with`` runs it.

    Args:
        device: a powered-on bumble Device that is not used for anything else (its Device
            name should be ``identity.name``: that is what GAP's Device Name shows).
        identity: name and Device Information strings.
        features: Blood Pressure Feature bits (uint16).
        battery_level: initial Battery Level, 0..100 %.
        advertising_interval_ms: advertising interval (short by default, for quick discovery).
        indication_timeout: how long one indication may wait for the central's confirmation.
        clock: the cuff's own wall clock, exposed as a writable Current Time Service.
        intermediate_cuff_pressure: add Intermediate Cuff Pressure 0x2A36 (notify).
        measurement_property: how 0x2A35 is delivered: "indicate" (the profile) or "notify"
            (a non-conforming cuff).
        require_encryption: refuse the measurement subscriptions with 0x0F until the link is
            encrypted (paired, or a bond reused).
    """

    KIND = "cuff"
    SERVICE_UUID16 = BLOOD_PRESSURE_SERVICE
    APPEARANCE = APPEARANCE_GENERIC_BLOOD_PRESSURE

    def __init__(
        self,
        device: Device,
        identity: CuffIdentity,
        *,
        features: int = 0,
        battery_level: int = 100,
        advertising_interval_ms: float = 100.0,
        indication_timeout: float = 5.0,
        clock: DeviceClock | None = None,
        intermediate_cuff_pressure: bool = False,
        measurement_property: MeasurementProperty = "indicate",
        require_encryption: bool = False,
    ) -> None:
        if not 0 <= features <= 0xFFFF:
            raise ValueError(f"Blood Pressure Feature must fit 16 bits, got {features:#x}")
        _check_battery_level(battery_level)
        if measurement_property not in get_args(MeasurementProperty):
            raise ValueError(
                f"measurement_property must be 'indicate' or 'notify', got {measurement_property!r}"
            )
        self.features = features
        self._battery_level = battery_level
        self.measurement_property: MeasurementProperty = measurement_property
        self._cccd_bit = (
            gatt.ClientCharacteristicConfigurationBits.INDICATION
            if measurement_property == "indicate"
            else gatt.ClientCharacteristicConfigurationBits.NOTIFICATION
        )

        self._measurement = gatt.Characteristic(
            UUID.from_16_bits(BLOOD_PRESSURE_MEASUREMENT, "Blood Pressure Measurement"),
            gatt.Characteristic.Properties.INDICATE
            if measurement_property == "indicate"
            else gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.Permissions(0),
            # bumble does not enforce the absence of READABLE: refuse reads like a real cuff.
            gatt.CharacteristicValue(read=read_not_permitted, write=write_not_permitted),
        )
        self._intermediate: gatt.Characteristic | None = None
        if intermediate_cuff_pressure:
            self._intermediate = gatt.Characteristic(
                UUID.from_16_bits(INTERMEDIATE_CUFF_PRESSURE, "Intermediate Cuff Pressure"),
                gatt.Characteristic.Properties.NOTIFY,
                gatt.Characteristic.Permissions(0),
                gatt.CharacteristicValue(read=read_not_permitted, write=write_not_permitted),
            )
        self._battery = gatt.Characteristic(
            gatt.GATT_BATTERY_LEVEL_CHARACTERISTIC,
            gatt.Characteristic.Properties.READ | gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.READABLE,
            gatt.CharacteristicValue(read=lambda _connection: bytes([self._battery_level])),
        )
        services = [
            gatt.Service(
                gatt.GATT_BLOOD_PRESSURE_SERVICE,
                [
                    self._measurement,
                    *([self._intermediate] if self._intermediate is not None else []),
                    gatt.Characteristic(
                        UUID.from_16_bits(BLOOD_PRESSURE_FEATURE, "Blood Pressure Feature"),
                        gatt.Characteristic.Properties.READ,
                        gatt.Characteristic.READABLE,
                        struct.pack("<H", features),
                    ),
                ],
            ),
            gatt.Service(gatt.GATT_BATTERY_SERVICE, [self._battery]),
        ]
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
            encrypted_subscriptions=[
                self._measurement,
                *([self._intermediate] if self._intermediate is not None else []),
            ],
        )
        self._memory: deque[_Record] = deque()
        self._flush_lock = asyncio.Lock()

    # --- state ------------------------------------------------------------------------------

    @property
    def stored_count(self) -> int:
        """Measurements in memory, not yet confirmed by a central."""
        return len(self._memory)

    @property
    def battery_level(self) -> int:
        return self._battery_level

    # --- lifecycle hooks ---------------------------------------------------------------------

    def _attach(self) -> None:
        self._measurement.on(gatt.Characteristic.EVENT_SUBSCRIPTION, self._on_subscription)

    def _detach(self) -> None:
        self._measurement.remove_listener(
            gatt.Characteristic.EVENT_SUBSCRIPTION, self._on_subscription
        )

    def _on_subscription(self, bearer: object, notify: bool, indicate: bool) -> None:
        subscribed = indicate if self.measurement_property == "indicate" else notify
        if subscribed and self._running:
            self._spawn(self._flush(), "cuff-deliver-stored")

    # --- behaviour ---------------------------------------------------------------------------

    async def measure(self, payload: bytes, *, inflation: Sequence[bytes] = ()) -> bool:
        """Store an encoded Blood Pressure Measurement and deliver it if a central is subscribed.

        ``inflation``: encoded Intermediate Cuff Pressure values, notified on 0x2A36 one by one
        (``INFLATION_STEP`` apart) before the measurement, as the cuff inflates; skipped when
        no central enabled notifications on 0x2A36 (a real cuff does not store them). It needs
        a cuff built with ``intermediate_cuff_pressure=True``.

        Returns True once the central confirmed this measurement (for a notifying cuff: once it
        was notified to a subscribed central); False when it stays in memory (no subscribed
        central, or the link dropped / the confirmation timed out), to be delivered at the next
        subscription.
        """
        if not payload:
            raise ValueError("a Blood Pressure Measurement payload cannot be empty")
        steps = [bytes(step) for step in inflation]
        if steps and self._intermediate is None:
            raise ValueError("this cuff has no Intermediate Cuff Pressure characteristic")
        if any(not step for step in steps):
            raise ValueError("an Intermediate Cuff Pressure payload cannot be empty")
        await self._inflate(steps)
        record = _Record(bytes(payload))
        self._memory.append(record)
        await self._flush()
        return record.confirmed

    async def set_battery_level(self, level: int) -> None:
        """Change the battery level and notify a subscribed central."""
        _check_battery_level(level)
        self._battery_level = level
        async with asyncio.timeout(COMMAND_TIMEOUT):
            await self._device.notify_subscribers(self._battery)

    async def disconnect(self) -> None:
        """End the current connection from the cuff's side (as cuffs do after a transfer)."""
        connection = self._connection
        if connection is not None:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                await connection.disconnect()

    async def _inflate(self, steps: list[bytes]) -> None:
        intermediate = self._intermediate
        for step in steps:
            connection = self._connection
            if intermediate is None or connection is None:
                return
            if not await self._notify_to(connection, intermediate, step):
                return  # nobody listens to the inflation (or the link went): skip the rest
            await asyncio.sleep(INFLATION_STEP)

    async def _flush(self) -> None:
        async with self._flush_lock:
            while self._memory:
                connection = self._subscribed_connection()
                if connection is None:
                    return
                record = self._memory[0]
                if not await self._deliver(connection, record.payload):
                    return
                self._memory.popleft()
                record.confirmed = True

    def _subscribed_connection(self) -> Connection | None:
        connection = self._connection
        if connection is None or not self._subscribed(
            connection, self._measurement, self._cccd_bit
        ):
            return None
        return connection

    async def _deliver(self, connection: Connection, payload: bytes) -> bool:
        if self.measurement_property == "notify":
            delivered = await self._notify_to(connection, self._measurement, payload)
            if not delivered:
                logger.info("cuff %s: notification not sent, record kept", self.identity.name)
            return delivered
        confirmed = await self._indicate_to(connection, self._measurement, payload)
        if not confirmed:
            logger.info("cuff %s: indication not confirmed, record kept", self.identity.name)
        return confirmed


def _check_battery_level(level: int) -> None:
    if not 0 <= level <= 100:
        raise ValueError(f"battery level must be 0..100 %, got {level}")
