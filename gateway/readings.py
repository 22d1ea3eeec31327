"""Decoded measurements → wire readings: normalised values, flags, times, deterministic ids.

Pure code: the device clock and time-zone policy is applied here and nowhere else.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.codec import BloodPressureMeasurement, MeasurementStatus, PulseRateRange
from homewatch.wire import (
    BloodPressureReading,
    BloodPressureValues,
    DeviceIdentity,
    MeasurementFlag,
    Quantity,
    Unit,
    bp_record_key,
    derive_reading_id,
)

log = logging.getLogger(__name__)

#: A device time further ahead of the gateway's clock than this is a wrong clock, not a reading.
MAX_DEVICE_CLOCK_AHEAD = timedelta(minutes=10)
#: Device clocks that were never set often start in 2000 or earlier.
EARLIEST_PLAUSIBLE = datetime(2010, 1, 1)


def blood_pressure_reading(
    measurement: BloodPressureMeasurement,
    raw: bytes,
    device: DeviceIdentity,
    received_at: datetime,
    device_timezone: ZoneInfo,
) -> BloodPressureReading:
    """The wire reading of one Blood Pressure Measurement as the gateway received it."""
    device_time = measurement.time_stamp.to_datetime() if measurement.time_stamp else None
    mmhg = measurement.in_mmhg()
    values = BloodPressureValues(
        systolic=Quantity(value=mmhg.systolic, unit=Unit.MMHG),
        diastolic=Quantity(value=mmhg.diastolic, unit=Unit.MMHG),
        mean_arterial_pressure=Quantity(value=mmhg.mean_arterial_pressure, unit=Unit.MMHG),
        pulse_rate=None
        if measurement.pulse_rate is None
        else Quantity(value=mmhg.pulse_rate, unit=Unit.BEATS_PER_MINUTE),
        reported_unit=measurement.unit.label,
        user_id=measurement.user_id,
    )
    return BloodPressureReading(
        reading_id=derive_reading_id(device, bp_record_key(device_time, raw, received_at)),
        device=device,
        device_time=device_time,
        received_at=received_at,
        measured_at=measured_at(device_time, received_at, device_timezone, device.device_key),
        values=values,
        flags=status_flags(measurement.status),
        raw=raw.hex(),
    )


def measured_at(
    device_time: datetime | None, received_at: datetime, tz: ZoneInfo, device_key: str = "?"
) -> datetime:
    """When the measurement was taken, UTC: the device's time stamp in its time zone when it is
    plausible (a stored record may be days old, but never in the future), else the receive time."""
    if device_time is None:
        return received_at
    local = device_time.replace(tzinfo=tz)
    if device_time < EARLIEST_PLAUSIBLE or local - received_at > MAX_DEVICE_CLOCK_AHEAD:
        log.warning(
            "%s: implausible device time %s (received %s); using the receive time",
            device_key, device_time, received_at,
        )  # fmt: skip
        return received_at
    return local.astimezone(received_at.tzinfo)


def status_flags(status: MeasurementStatus | None) -> list[MeasurementFlag]:
    if status is None:
        return []
    flags = []
    if status.body_movement:
        flags.append(MeasurementFlag.BODY_MOVEMENT)
    if status.cuff_too_loose:
        flags.append(MeasurementFlag.CUFF_TOO_LOOSE)
    if status.irregular_pulse:
        flags.append(MeasurementFlag.IRREGULAR_PULSE)
    if status.pulse_rate_range is PulseRateRange.ABOVE:
        flags.append(MeasurementFlag.PULSE_RATE_ABOVE_RANGE)
    elif status.pulse_rate_range is PulseRateRange.BELOW:
        flags.append(MeasurementFlag.PULSE_RATE_BELOW_RANGE)
    if status.improper_position:
        flags.append(MeasurementFlag.IMPROPER_POSITION)
    return flags
