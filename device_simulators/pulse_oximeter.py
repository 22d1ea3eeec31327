"""A pulse oximeter simulator: a bumble GATT server speaking the Pulse Oximeter Profile.

Services: Pulse Oximeter 0x1822 (PLX Spot-Check Measurement 0x2A5E, indicate; PLX Features
0x2A60, read), Device Information 0x180A, Battery 0x180F and, with a ``clock``, a writable
Current Time Service 0x1805. Spot-check measurements are encoded with the gateway's own codec
(``gateway.codec.pulse_oximeter``) and kept until a central confirms their indication
(``device_simulators.stored_indications``); a fingertip oximeter that lost its clock says so
with flag bit 4 ("Device Clock is Not Set") in each measurement::

    oximeter = PulseOximeter(await radio.peripheral_device(identity.name), identity)
    async with oximeter:
        await oximeter.measure(PlxSpotCheckMeasurement.from_values(97, 72))
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from bumble import gatt
from bumble.core import UUID
from bumble.device import Device

from device_simulators.device_clock import DeviceClock
from device_simulators.peripheral import PeripheralIdentity
from device_simulators.stored_indications import IndicatedMeasurementDevice
from gateway.codec.pulse_oximeter import (
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
)

PULSE_OXIMETER_SERVICE = 0x1822
PLX_SPOT_CHECK_MEASUREMENT = 0x2A5E
PLX_FEATURES = 0x2A60
#: GAP Appearance "Pulse Oximeter: Fingertip" (category 0x031, sub-category 0x01).
APPEARANCE_FINGERTIP_PULSE_OXIMETER = 0x031 << 6 | 0x01
#: The simulated model (Device Information model number).
OXIMETER_MODEL = "PO-Sim 1"

#: An oximeter's identity: the name it advertises and its Device Information strings.
OximeterIdentity = PeripheralIdentity


class PlxSupportedFeature(enum.IntFlag):
    """PLX Features, Supported Features (uint16); bits 8..15 are RFU."""

    MEASUREMENT_STATUS = 1 << 0  # the Measurement Status Support field follows
    DEVICE_AND_SENSOR_STATUS = 1 << 1  # the Device and Sensor Status Support field follows
    SPOT_CHECK_MEASUREMENT_STORAGE = 1 << 2  # stored records over RACP
    SPOT_CHECK_TIME_STAMP = 1 << 3
    SPO2PR_FAST = 1 << 4
    SPO2PR_SLOW = 1 << 5
    PULSE_AMPLITUDE_INDEX = 1 << 6
    MULTIPLE_BONDS = 1 << 7


_NO_FEATURES = PlxSupportedFeature(0)
_STATUS_SUPPORT_BITS = PlxSupportedFeature.MEASUREMENT_STATUS | (
    PlxSupportedFeature.DEVICE_AND_SENSOR_STATUS
)


@dataclass(frozen=True)
class PlxFeatures:
    """PLX Features 0x2A60: Supported Features, then the status bits the device can report.

    Bits 0 and 1 of the Supported Features say whether each support field follows; here they
    follow from whether ``measurement_status`` / ``device_and_sensor_status`` are given, so the
    value cannot announce a field it lacks.
    """

    supported: PlxSupportedFeature = _NO_FEATURES
    measurement_status: PlxMeasurementStatus | None = None
    device_and_sensor_status: PlxDeviceAndSensorStatus | None = None

    def __post_init__(self) -> None:
        if self.supported & _STATUS_SUPPORT_BITS:
            raise ValueError(
                "bits 0 and 1 of the Supported Features follow from the support fields: "
                "give measurement_status / device_and_sensor_status instead"
            )

    @property
    def flags(self) -> PlxSupportedFeature:
        flags = PlxSupportedFeature(self.supported)
        if self.measurement_status is not None:
            flags |= PlxSupportedFeature.MEASUREMENT_STATUS
        if self.device_and_sensor_status is not None:
            flags |= PlxSupportedFeature.DEVICE_AND_SENSOR_STATUS
        return flags

    def __bytes__(self) -> bytes:
        parts = [struct.pack("<H", int(self.flags))]
        if self.measurement_status is not None:
            parts.append(struct.pack("<H", int(self.measurement_status)))
        if self.device_and_sensor_status is not None:
            parts.append(int(self.device_and_sensor_status).to_bytes(3, "little"))
        return b"".join(parts)


#: What the simulated model offers: time-stamped spot checks with status, and the PAI.
OXIMETER_FEATURES = PlxFeatures(
    supported=PlxSupportedFeature.SPOT_CHECK_TIME_STAMP | PlxSupportedFeature.PULSE_AMPLITUDE_INDEX,
    measurement_status=PlxMeasurementStatus.EARLY_ESTIMATED_DATA
    | PlxMeasurementStatus.VALIDATED_DATA
    | PlxMeasurementStatus.QUESTIONABLE_MEASUREMENT_DETECTED
    | PlxMeasurementStatus.INVALID_MEASUREMENT_DETECTED,
    device_and_sensor_status=PlxDeviceAndSensorStatus.LOW_PERFUSION_DETECTED
    | PlxDeviceAndSensorStatus.POOR_SIGNAL_DETECTED
    | PlxDeviceAndSensorStatus.SENSOR_DISPLACED
    | PlxDeviceAndSensorStatus.SENSOR_UNCONNECTED_TO_USER,
)


class PulseOximeter(IndicatedMeasurementDevice):
    """A simulated BLE pulse oximeter (spot-check) on a bumble ``Device``; ``async with`` runs it.

    Args:
        device: a powered-on bumble Device used for nothing else.
        identity: name and Device Information strings.
        features: the PLX Features value.
        battery_level: initial Battery Level, 0..100 % (None: no Battery service).
        clock: the oximeter's own wall clock, exposed as a writable Current Time Service.
        capacity: how many unconfirmed measurements the oximeter keeps (None: unbounded).
        advertising_interval_ms, indication_timeout, require_encryption: as the base.
    """

    KIND = "oximeter"
    SERVICE_UUID16 = PULSE_OXIMETER_SERVICE
    APPEARANCE = APPEARANCE_FINGERTIP_PULSE_OXIMETER
    MEASUREMENT_UUID16 = PLX_SPOT_CHECK_MEASUREMENT
    MEASUREMENT_NAME = "PLX Spot-Check Measurement"

    def __init__(
        self,
        device: Device,
        identity: OximeterIdentity,
        *,
        features: PlxFeatures = OXIMETER_FEATURES,
        battery_level: int | None = 100,
        clock: DeviceClock | None = None,
        capacity: int | None = None,
        advertising_interval_ms: float = 100.0,
        indication_timeout: float = 5.0,
        require_encryption: bool = False,
    ) -> None:
        self.features = features
        super().__init__(
            device,
            identity,
            [
                gatt.Characteristic(
                    UUID.from_16_bits(PLX_FEATURES, "PLX Features"),
                    gatt.Characteristic.Properties.READ,
                    gatt.Characteristic.READABLE,
                    bytes(features),
                )
            ],
            battery_level=battery_level,
            clock=clock,
            capacity=capacity,
            advertising_interval_ms=advertising_interval_ms,
            indication_timeout=indication_timeout,
            require_encryption=require_encryption,
        )

    async def measure(self, measurement: PlxSpotCheckMeasurement) -> bool:
        """Store a PLX Spot-Check Measurement and deliver it if a central is subscribed; True
        once confirmed, False when it stays in memory until the next subscription."""
        return await self.measure_raw(bytes(measurement))
