"""Weight, pulse-oximetry and body-temperature measurements → wire readings.

Pure code, like ``gateway.readings``: values normalised to the wire's units (kg, m, kg/m2, %,
/min, Cel; imperial scales and Fahrenheit thermometers converted here, once, with the unit the
device reported kept beside the value), status bits as snake_case names, the body site from the
Temperature Type, times through ``gateway.device_time.when_measured``, and a deterministic
reading id from ``vitals_record_key``. A special value (NaN, NRes, ±INF, a scale's "Measurement
Unsuccessful") becomes a null value, never a number.
"""

from __future__ import annotations

import enum
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.codec.pulse_oximeter import PlxSpotCheckMeasurement
from gateway.codec.thermometer import TemperatureMeasurement, TemperatureType, TemperatureUnit
from gateway.codec.weight_scale import WeightMeasurement, WeightUnit
from gateway.device_time import ClockCheck
from gateway.readings import code_name, timing
from homewatch.wire import (
    ClockStatus,
    DeviceIdentity,
    OximetryReading,
    OximetryValues,
    Quantity,
    TemperatureReading,
    TemperatureValues,
    Unit,
    WeightReading,
    WeightValues,
)

__all__ = [
    "oximetry_reading",
    "plx_status_names",
    "temperature_reading",
    "vitals_record_key",
    "weight_reading",
]


def vitals_record_key(
    kind: str, device_time: datetime | None, raw: bytes, received_at: datetime
) -> str:
    """Record key of a weight, oximetry or temperature measurement (``kind`` as on the wire).

    These profiles have no sequence numbers, so a record is its time stamp with its bytes, as
    for blood pressure (``wire.bp_record_key``): a record the device sends again after a dropped
    link maps to the same id. Without a device time stamp the receive time stands in, which
    still makes redelivery of the same message harmless.
    """
    when = device_time.isoformat() if device_time else f"rx:{received_at.isoformat()}"
    return f"{kind}|{when}|{raw.hex()}"


def weight_reading(
    measurement: WeightMeasurement,
    raw: bytes,
    device: DeviceIdentity,
    received_at: datetime,
    device_timezone: ZoneInfo,
    clock: ClockCheck | None = None,
) -> WeightReading:
    """The wire reading of one Weight Measurement: weight in kg, height in m, BMI in kg/m2."""
    device_time = measurement.time_stamp.to_datetime() if measurement.time_stamp else None
    values = WeightValues(
        weight=Quantity(value=measurement.weight_kg(), unit=Unit.KILOGRAM),
        bmi=None
        if measurement.bmi_raw is None
        else Quantity(value=measurement.bmi, unit=Unit.KG_PER_M2),
        height=None
        if measurement.height_raw is None
        else Quantity(value=measurement.height_m(), unit=Unit.METRE),
        reported_unit="imperial" if measurement.unit is WeightUnit.IMPERIAL else "SI",
        user_id=measurement.user_id,
    )
    key = vitals_record_key("weight", device_time, raw, received_at)
    return WeightReading(
        **timing(device, device_time, received_at, device_timezone, clock, key),
        values=values,
        raw=raw.hex(),
    )


def oximetry_reading(
    measurement: PlxSpotCheckMeasurement,
    raw: bytes,
    device: DeviceIdentity,
    received_at: datetime,
    device_timezone: ZoneInfo,
    clock: ClockCheck | None = None,
) -> OximetryReading:
    """The wire reading of one PLX Spot-Check Measurement: SpO2 and PAI in %, pulse in /min.

    An oximeter that flags "Device Clock is Not Set" is believed over what the gateway read on
    connect: its time stamp means nothing, so the reading is marked ``unset`` and ``measured_at``
    is the receive time.
    """
    clock = clock or ClockCheck.unknown()
    if measurement.device_clock_not_set:
        clock = ClockCheck(ClockStatus.UNSET, clock.offset)
    device_time = measurement.time_stamp.to_datetime() if measurement.time_stamp else None
    pai = measurement.pulse_amplitude_index
    values = OximetryValues(
        spo2=Quantity(value=measurement.spo2_percent(), unit=Unit.PERCENT),
        pulse_rate=Quantity(value=measurement.pulse_rate_bpm(), unit=Unit.BEATS_PER_MINUTE),
        pulse_amplitude_index=None
        if pai is None
        else Quantity(value=measurement.pulse_amplitude_index_percent(), unit=Unit.PERCENT),
        status=plx_status_names(measurement),
    )
    key = vitals_record_key("oximetry", device_time, raw, received_at)
    return OximetryReading(
        **timing(device, device_time, received_at, device_timezone, clock, key),
        values=values,
        raw=raw.hex(),
    )


def temperature_reading(
    measurement: TemperatureMeasurement,
    raw: bytes,
    device: DeviceIdentity,
    received_at: datetime,
    device_timezone: ZoneInfo,
    clock: ClockCheck | None = None,
    *,
    site: TemperatureType | None = None,
) -> TemperatureReading:
    """The wire reading of one Temperature Measurement, in °C.

    ``site`` is the thermometer's static Temperature Type (0x2A1D), read on connect; a type
    inside the measurement wins over it (HTS puts it in one place or the other).
    """
    device_time = measurement.time_stamp.to_datetime() if measurement.time_stamp else None
    where = measurement.temperature_type if measurement.temperature_type is not None else site
    values = TemperatureValues(
        temperature=Quantity(value=measurement.celsius(), unit=Unit.CELSIUS),
        reported_unit="[degF]" if measurement.unit is TemperatureUnit.FAHRENHEIT else "Cel",
        site=None if where is None else code_name(where),
    )
    key = vitals_record_key("body_temperature", device_time, raw, received_at)
    return TemperatureReading(
        **timing(device, device_time, received_at, device_timezone, clock, key),
        values=values,
        raw=raw.hex(),
    )


def plx_status_names(measurement: PlxSpotCheckMeasurement) -> list[str]:
    """Measurement Status then Device and Sensor Status bits set, snake_case, in bit order.

    RFU bits have no name and are left out (they stay in ``raw``).
    """
    names: list[str] = []
    for flags in (measurement.measurement_status, measurement.device_and_sensor_status):
        if flags is not None:
            names.extend(_set_names(flags))
    return names


def _set_names(flags: enum.IntFlag) -> list[str]:
    return [str(flag.name).lower() for flag in type(flags) if flag and flag in flags]
