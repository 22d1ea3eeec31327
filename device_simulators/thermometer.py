"""A thermometer simulator: a bumble GATT server speaking the Health Thermometer Profile.

Services: Health Thermometer 0x1809 (Temperature Measurement 0x2A1C, indicate; Temperature Type
0x2A1D, read, when the thermometer always measures at one body site), Device Information 0x180A,
Battery 0x180F and, with a ``clock``, a writable Current Time Service 0x1805. Measurements are
encoded with the gateway's own codec (``gateway.codec.thermometer``) and kept until a central
confirms their indication (``device_simulators.stored_indications``).

HTS puts the body site in one of two places: a thermometer with a fixed site (an ear thermometer)
serves the static Temperature Type characteristic and leaves the type out of its measurements;
one that measures at several sites sends the type in each measurement instead::

    thermometer = Thermometer(device, identity, site=TemperatureType.EAR)
    async with thermometer:
        await thermometer.measure(TemperatureMeasurement.from_values(37.2, time_stamp=...))
"""

from __future__ import annotations

from bumble import gatt
from bumble.core import UUID
from bumble.device import Device

from device_simulators.device_clock import DeviceClock
from device_simulators.peripheral import PeripheralIdentity
from device_simulators.stored_indications import IndicatedMeasurementDevice
from gateway.codec.thermometer import TemperatureMeasurement, TemperatureType

HEALTH_THERMOMETER_SERVICE = 0x1809
TEMPERATURE_MEASUREMENT = 0x2A1C
TEMPERATURE_TYPE = 0x2A1D
#: GAP Appearance "Thermometer: Generic" (category 0x00C, sub-category 0x00).
APPEARANCE_GENERIC_THERMOMETER = 0x00C << 6
#: The simulated model (Device Information model number).
THERMOMETER_MODEL = "TH-Sim 1"

#: A thermometer's identity: the name it advertises and its Device Information strings.
ThermometerIdentity = PeripheralIdentity


class Thermometer(IndicatedMeasurementDevice):
    """A simulated BLE health thermometer on a bumble ``Device``; ``async with`` runs it.

    Args:
        device: a powered-on bumble Device used for nothing else.
        identity: name and Device Information strings.
        site: the fixed body site, served as Temperature Type 0x2A1D (None: no such
            characteristic; the measurements then carry their own type, if any).
        battery_level: initial Battery Level, 0..100 % (None: no Battery service).
        clock: the thermometer's own wall clock, exposed as a writable Current Time Service.
        capacity: how many unconfirmed measurements the thermometer keeps (None: unbounded).
        advertising_interval_ms, indication_timeout, require_encryption: as the base.
    """

    KIND = "thermometer"
    SERVICE_UUID16 = HEALTH_THERMOMETER_SERVICE
    APPEARANCE = APPEARANCE_GENERIC_THERMOMETER
    MEASUREMENT_UUID16 = TEMPERATURE_MEASUREMENT
    MEASUREMENT_NAME = "Temperature Measurement"

    def __init__(
        self,
        device: Device,
        identity: ThermometerIdentity,
        *,
        site: TemperatureType | None = None,
        battery_level: int | None = 100,
        clock: DeviceClock | None = None,
        capacity: int | None = None,
        advertising_interval_ms: float = 100.0,
        indication_timeout: float = 5.0,
        require_encryption: bool = False,
    ) -> None:
        self.site = None if site is None else TemperatureType(site)
        characteristics = []
        if self.site is not None:
            characteristics.append(
                gatt.Characteristic(
                    UUID.from_16_bits(TEMPERATURE_TYPE, "Temperature Type"),
                    gatt.Characteristic.Properties.READ,
                    gatt.Characteristic.READABLE,
                    bytes((int(self.site),)),
                )
            )
        super().__init__(
            device,
            identity,
            characteristics,
            battery_level=battery_level,
            clock=clock,
            capacity=capacity,
            advertising_interval_ms=advertising_interval_ms,
            indication_timeout=indication_timeout,
            require_encryption=require_encryption,
        )

    async def measure(self, measurement: TemperatureMeasurement) -> bool:
        """Store a Temperature Measurement and deliver it if a central is subscribed; True once
        confirmed, False when it stays in memory until the next subscription."""
        return await self.measure_raw(bytes(measurement))
