"""Decoded measurements → wire readings: normalised values, flags, times, deterministic ids.

Pure code: the device clock and time-zone policy (``gateway.device_time``) is applied here and
nowhere else.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from gateway.codec import BloodPressureMeasurement, MeasurementStatus, PulseRateRange
from gateway.codec.glucose_context import GlucoseMeasurementContext, MedicationUnit
from gateway.codec.ieee11073 import SFloat
from gateway.device_time import ClockCheck, when_measured
from gateway.glucose_transfer import GlucoseRecord
from homewatch.wire import (
    BloodPressureReading,
    BloodPressureValues,
    DeviceIdentity,
    GlucoseContext,
    GlucoseReading,
    GlucoseValues,
    MeasurementFlag,
    Quantity,
    Unit,
    bp_record_key,
    derive_reading_id,
    glucose_record_key,
)

log = logging.getLogger(__name__)


def timing(
    device: DeviceIdentity,
    device_time: datetime | None,
    received_at: datetime,
    device_timezone: ZoneInfo,
    clock: ClockCheck | None,
    record_key: str,
) -> dict[str, Any]:
    """The fields every wire reading shares: its id, the device, the three times, where
    ``measured_at`` came from and the device clock (see ``gateway.device_time``)."""
    clock = clock or ClockCheck.unknown()
    measured_at, source = when_measured(
        device_time, received_at, device_timezone, clock, device.device_key
    )
    return {
        "reading_id": derive_reading_id(device, record_key),
        "device": device,
        "device_time": device_time,
        "received_at": received_at,
        "measured_at": measured_at,
        "time_source": source,
        "device_clock": clock.to_wire(),
    }


def blood_pressure_reading(
    measurement: BloodPressureMeasurement,
    raw: bytes,
    device: DeviceIdentity,
    received_at: datetime,
    device_timezone: ZoneInfo,
    clock: ClockCheck | None = None,
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
    key = bp_record_key(device_time, raw, received_at)
    return BloodPressureReading(
        **timing(device, device_time, received_at, device_timezone, clock, key),
        values=values,
        flags=status_flags(measurement.status),
        raw=raw.hex(),
    )


def glucose_reading(
    record: GlucoseRecord,
    device: DeviceIdentity,
    received_at: datetime,
    device_timezone: ZoneInfo,
    clock: ClockCheck | None = None,
) -> GlucoseReading:
    """The wire reading of one stored glucose record (measurement and context)."""
    m = record.measurement
    device_time = m.measured_at_device()  # base time + time offset, the meter's own clock
    status = m.sensor_status.set_names if m.sensor_status is not None else ()
    values = GlucoseValues(
        mmol_per_l=Quantity(value=m.concentration_mmol_per_l(), unit=Unit.MMOL_PER_L),
        mg_per_dl=Quantity(value=m.concentration_mg_per_dl(), unit=Unit.MG_PER_DL),
        reported_unit=m.unit.label,
        sample_type=None if m.sample_type is None else code_name(m.sample_type),
        sample_location=None if m.sample_location is None else code_name(m.sample_location),
        sensor_status=list(status),
    )
    key = glucose_record_key(m.sequence_number, device_time)
    return GlucoseReading(
        **timing(device, device_time, received_at, device_timezone, clock, key),
        sequence_number=m.sequence_number,
        values=values,
        context=None if record.context is None else glucose_context(record.context),
        control_solution=m.is_control_solution,
        raw=record.raw.hex(),
        raw_context=None if record.raw_context is None else record.raw_context.hex(),
    )


def glucose_context(context: GlucoseMeasurementContext) -> GlucoseContext:
    """Context in clinical units: the SIG sends kilograms and litres (SPEC.md 4.2)."""
    medication = context.medication
    litres = context.medication_unit is MedicationUnit.LITRES
    amount = None if medication is None else _scaled(medication.amount, 1000 if litres else 10**6)
    tester_health = context.tester_health
    exercise = context.exercise
    return GlucoseContext(
        meal=None if context.meal is None else code_name(context.meal),
        tester=None if tester_health is None else code_name(tester_health.tester),
        health=None if tester_health is None else code_name(tester_health.health),
        carbohydrate=None if context.carbohydrate is None else code_name(context.carbohydrate.id),
        carbohydrate_grams=None
        if context.carbohydrate is None
        else _scaled(context.carbohydrate.kilograms, 1000),
        exercise_duration_seconds=None if exercise is None else exercise.duration_s,
        exercise_intensity_percent=None if exercise is None else exercise.intensity_pct,
        medication=None if medication is None else code_name(medication.id),
        medication_milligrams=None if litres else amount,
        medication_millilitres=amount if litres else None,
        hba1c_percent=None if context.hba1c_pct is None else _scaled(context.hba1c_pct, 1),
    )


def code_name(code: object) -> str:
    """snake_case name of an open code enum member; ``reserved_<n>`` for an unassigned code."""
    name = getattr(code, "name", None)
    if not name or getattr(code, "is_reserved", False):
        return f"reserved_{int(code)}"  # type: ignore[call-overload]
    return name.lower()


def _scaled(value: SFloat, factor: int) -> float | None:
    number = value.decimal
    return None if number is None else float(number * Decimal(factor))


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
