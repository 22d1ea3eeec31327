"""A weight scale simulator: a bumble GATT server speaking the Weight Scale Profile.

Services: Weight Scale 0x181D (Weight Measurement 0x2A9D, indicate; Weight Scale Feature 0x2A9E,
read), Device Information 0x180A, Battery 0x180F (scales run on coin cells or AAs) and, with a
``clock``, a writable Current Time Service 0x1805 (WSS requires CTS when the scale stamps its
measurements). Measurements are encoded with the gateway's own codec
(``gateway.codec.weight_scale``) and kept until a central confirms their indication
(``device_simulators.stored_indications``)::

    scale = WeightScale(await radio.peripheral_device(identity.name), identity, clock=clock)
    async with scale:
        await scale.measure(WeightMeasurement.from_values(72.35, time_stamp=clock.now()))
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
from gateway.codec.weight_scale import WeightMeasurement

WEIGHT_SCALE_SERVICE = 0x181D
WEIGHT_MEASUREMENT = 0x2A9D
WEIGHT_SCALE_FEATURE = 0x2A9E
#: GAP Appearance "Weight Scale: Generic" (category 0x032, sub-category 0x00).
APPEARANCE_GENERIC_WEIGHT_SCALE = 0x032 << 6
#: The simulated model (Device Information model number).
SCALE_MODEL = "WS-Sim 1"

#: A scale's identity: the name it advertises and its Device Information strings.
ScaleIdentity = PeripheralIdentity


class WeightResolution(enum.IntEnum):
    """Weight Scale Feature bits 3..6: the scale's resolution (SI / imperial)."""

    NOT_SPECIFIED = 0
    KG_0_5 = 1  # 0.5 kg or 1 lb
    KG_0_2 = 2  # 0.2 kg or 0.5 lb
    KG_0_1 = 3  # 0.1 kg or 0.2 lb
    KG_0_05 = 4  # 0.05 kg or 0.1 lb
    KG_0_02 = 5  # 0.02 kg or 0.05 lb
    KG_0_01 = 6  # 0.01 kg or 0.02 lb
    KG_0_005 = 7  # 0.005 kg or 0.01 lb


class HeightResolution(enum.IntEnum):
    """Weight Scale Feature bits 7..9: the height resolution (SI / imperial)."""

    NOT_SPECIFIED = 0
    M_0_01 = 1  # 0.01 m or 1 in
    M_0_005 = 2  # 0.005 m or 0.5 in
    M_0_001 = 3  # 0.001 m or 0.1 in


@dataclass(frozen=True)
class WeightScaleFeature:
    """Weight Scale Feature 0x2A9E (uint32): what the scale's measurements may contain."""

    time_stamp: bool = True  # bit 0
    multiple_users: bool = False  # bit 1
    bmi: bool = False  # bit 2
    weight_resolution: WeightResolution = WeightResolution.NOT_SPECIFIED  # bits 3..6
    height_resolution: HeightResolution = HeightResolution.NOT_SPECIFIED  # bits 7..9

    def __int__(self) -> int:
        return (
            int(self.time_stamp)
            | int(self.multiple_users) << 1
            | int(self.bmi) << 2
            | int(WeightResolution(self.weight_resolution)) << 3
            | int(HeightResolution(self.height_resolution)) << 7
        )

    def __bytes__(self) -> bytes:
        return struct.pack("<I", int(self))


#: What the simulated model offers: time stamps, several users, BMI and height, 0.05 kg steps.
SCALE_FEATURE = WeightScaleFeature(
    time_stamp=True,
    multiple_users=True,
    bmi=True,
    weight_resolution=WeightResolution.KG_0_05,
    height_resolution=HeightResolution.M_0_001,
)


class WeightScale(IndicatedMeasurementDevice):
    """A simulated BLE weight scale on a bumble ``Device``; ``async with`` runs it.

    Args:
        device: a powered-on bumble Device used for nothing else.
        identity: name and Device Information strings.
        feature: the Weight Scale Feature value.
        battery_level: initial Battery Level, 0..100 % (None: no Battery service).
        clock: the scale's own wall clock, exposed as a writable Current Time Service.
        capacity: how many unconfirmed measurements the scale keeps (None: unbounded).
        advertising_interval_ms, indication_timeout, require_encryption: as the base.
    """

    KIND = "scale"
    SERVICE_UUID16 = WEIGHT_SCALE_SERVICE
    APPEARANCE = APPEARANCE_GENERIC_WEIGHT_SCALE
    MEASUREMENT_UUID16 = WEIGHT_MEASUREMENT
    MEASUREMENT_NAME = "Weight Measurement"

    def __init__(
        self,
        device: Device,
        identity: ScaleIdentity,
        *,
        feature: WeightScaleFeature = SCALE_FEATURE,
        battery_level: int | None = 100,
        clock: DeviceClock | None = None,
        capacity: int | None = None,
        advertising_interval_ms: float = 100.0,
        indication_timeout: float = 5.0,
        require_encryption: bool = False,
    ) -> None:
        self.feature = feature
        super().__init__(
            device,
            identity,
            [
                gatt.Characteristic(
                    UUID.from_16_bits(WEIGHT_SCALE_FEATURE, "Weight Scale Feature"),
                    gatt.Characteristic.Properties.READ,
                    gatt.Characteristic.READABLE,
                    bytes(feature),
                )
            ],
            battery_level=battery_level,
            clock=clock,
            capacity=capacity,
            advertising_interval_ms=advertising_interval_ms,
            indication_timeout=indication_timeout,
            require_encryption=require_encryption,
        )

    async def measure(self, measurement: WeightMeasurement) -> bool:
        """Store a Weight Measurement and deliver it if a central is subscribed; True once
        confirmed, False when it stays in memory until the next subscription."""
        return await self.measure_raw(bytes(measurement))
