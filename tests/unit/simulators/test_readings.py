"""Generated readings encode to what real devices send, and the gateway's decoders read back
the values, the flags and the device time stamp (a drifting or unset clock included)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from device_simulators.devices import ClockSpec
from device_simulators.patients import Measurement
from device_simulators.readings import GlucoseValues, SimulatedReading, meter_value
from device_simulators.sim_time import SimulationTime
from gateway.codec import BloodPressureMeasurement, MeasurementStatus
from gateway.codec.glucose import GlucoseMeasurement, GlucoseUnit
from gateway.codec.glucose_context import GlucoseMeasurementContext, Meal
from tests.unit.simulators.sim_support import START, bp, cuff_patients, glucose, meter_patients, run


def test_cuff_readings_round_trip_through_the_gateway_codec() -> None:
    body = (
        cuff_patients(2, extra="artefacts = { movement = 0.2, loose_cuff = 0.2 }")
        + """
[[patients.events]]
kind = "irregular_pulse"
day = 0
time = "00:00"
"""
    )
    readings = list(run(body, days=10).all_readings())
    for r in readings:
        decoded = BloodPressureMeasurement.from_bytes(bytes(r.blood_pressure()))
        values = bp(r)
        mmhg = decoded.in_mmhg()
        if values.failed:
            assert mmhg.systolic is None and mmhg.mean_arterial_pressure is None
        else:
            assert (mmhg.systolic, mmhg.diastolic, mmhg.pulse_rate) == (
                values.systolic,
                values.diastolic,
                values.pulse,
            )
        assert decoded.status == values.status
        assert decoded.time_stamp is not None
        assert decoded.time_stamp.to_datetime() == r.device_time
    assert any(bp(r).status.irregular_pulse for r in readings)


@pytest.mark.parametrize("unit", ["mg/dL", "mmol/L"])
def test_meter_readings_round_trip_in_either_unit(unit: str) -> None:
    body = meter_patients(
        1,
        device_extra=f'unit = "{unit}"\nmeals = ["fasting", "bedtime"]\ntag_probability = 1',
    )
    for r in run(body, days=5).all_readings():
        measurement, context = r.glucose()
        decoded = GlucoseMeasurement.from_bytes(bytes(measurement))
        assert decoded.unit is (GlucoseUnit.KG_PER_L if unit == "mg/dL" else GlucoseUnit.MOL_PER_L)
        assert decoded.concentration_mmol_per_l() == pytest.approx(glucose(r).mmol_per_l, abs=1e-9)
        assert decoded.measured_at_device() == r.device_time
        assert context is not None
        assert GlucoseMeasurementContext.from_bytes(bytes(context)).meal in (
            Meal.FASTING,
            Meal.BEDTIME,
        )


def test_meter_value_rounds_to_the_display_unit_and_knows_its_range() -> None:
    assert meter_value(6.0, "mmol/L") == 6.0
    assert meter_value(6.04, "mmol/L") == 6.0
    assert meter_value(5.55, "mg/dL") == pytest.approx(100 / 18.016)
    assert meter_value(33.4, "mg/dL") is None and meter_value(0.5, "mmol/L") is None


def test_low_readings_beyond_the_range_are_lo_with_negative_infinity() -> None:
    values = GlucoseValues(None, "mg/dL", 0.4, out_of_range="low", battery_low=True)
    reading = SimulatedReading(
        "p", "k", "meter", "glucose", START, START.replace(tzinfo=None), values, ("scheduled",)
    )
    measurement, _ = reading.glucose()
    decoded = GlucoseMeasurement.from_bytes(bytes(measurement))
    assert decoded.concentration is not None and decoded.concentration.value == -math.inf
    assert decoded.sensor_status is not None
    assert set(decoded.sensor_status.set_names) == {
        "device_battery_low",
        "result_lower_than_device_can_process",
    }


def test_a_reading_of_one_kind_cannot_be_encoded_as_the_other() -> None:
    body = cuff_patients(1)
    reading = next(run(body, days=1).all_readings())
    with pytest.raises(TypeError, match="not a glucose"):
        reading.glucose()


def test_a_drifting_device_clock_stamps_its_own_time() -> None:
    body = (
        cuff_patients(1).replace('type = "cuff"', 'type = "cuff"\nclock = true')
        + """
[[patients.events]]
kind = "clock_drift"
device = "cuff"
offset_minutes = 30
drift_ppm = 500
"""
    )
    readings = list(run(body, days=10).all_readings())
    for r in readings:
        elapsed = r.true_time - START
        expected = START.replace(tzinfo=None) + timedelta(minutes=30) + elapsed * 1.0005
        assert r.device_time == expected.replace(microsecond=0)
    assert readings[-1].device_time - readings[-1].true_time.replace(tzinfo=None) > timedelta(
        minutes=30, seconds=400
    )


def test_measurement_keeps_its_old_encoding() -> None:
    at = datetime(2026, 3, 14, 8, 30, tzinfo=UTC)
    m = Measurement(at, 142, 91, 77)
    assert m.encode() == bytes(
        BloodPressureMeasurement.from_values(
            142,
            91,
            108,
            time_stamp=at.replace(tzinfo=None),
            pulse_rate=77,
            status=MeasurementStatus(),
        )
    )
    failed = Measurement(at, math.nan, math.nan, math.nan, status=MeasurementStatus(True, True))
    decoded = BloodPressureMeasurement.from_bytes(failed.encode())
    assert decoded.in_mmhg().systolic is None and decoded.status == MeasurementStatus(True, True)


def test_simulation_time_is_pinned_for_stamps_and_real_for_collectors() -> None:
    real = START + timedelta(days=3)
    time = SimulationTime(START, real=lambda: real)
    assert time.now() == real
    with time.pinned(START + timedelta(minutes=1)):
        assert time.now() == START + timedelta(minutes=1)
    assert time.now() == real
    clock = time.build_clock(ClockSpec(offset=timedelta(minutes=5)), ZoneInfo("UTC"))
    # Read by a collector (real time): as wrong as its offset; stamps at the true time.
    assert clock.now() == (real + timedelta(minutes=5)).replace(tzinfo=None)
    reading_at = START + timedelta(hours=7)
    assert time.device_time(clock, reading_at) == (reading_at + timedelta(minutes=5)).replace(
        tzinfo=None
    )
    # A collector sets the clock (in real time): later readings, taken in simulated time that
    # still lags the real clock, are stamped right.
    clock.set(real.replace(tzinfo=None))
    later = START + timedelta(days=1)
    assert time.device_time(clock, later) == later.replace(tzinfo=None)
    with pytest.raises(ValueError, match="aware"):
        SimulationTime(START.replace(tzinfo=None))
