"""The virtual patients' physiology has the statistics the clinical rules assume
(shared/clinical/RULES.md): morning surge, within-person SD about 5 mmHg, deterioration slopes,
medication effects, crises re-measured, recurring irregular pulse, meal peaks, hypoglycaemia
below 3.0 mmol/L, worsening glucose control."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest
from scipy import stats

from device_simulators.physiology import (
    HYPO_LEVEL_2,
    BloodPressureModel,
    BloodPressureProfile,
    Deterioration,
    GlucoseModel,
    GlucoseProfile,
    Hypoglycaemia,
    MedicationChange,
)
from tests.unit.simulators.sim_support import (
    START,
    bp,
    cuff_patients,
    glucose,
    meter_patients,
    run,
)

UTC_DAY = date(2026, 3, 2)


def at(hour: float, day: int = 0) -> datetime:
    return datetime.combine(UTC_DAY, time(0), UTC) + timedelta(days=day, hours=hour)


# --- blood pressure -----------------------------------------------------------------------------


def test_true_pressure_has_a_morning_surge_and_a_night_dip() -> None:
    model = BloodPressureModel(BloodPressureProfile(140, 88, 70, morning_surge=10, night_dip=12))
    surge, _ = model.true_pressure(at(8), 8.0)
    afternoon, afternoon_dia = model.true_pressure(at(15), 15.0)
    night, _ = model.true_pressure(at(3), 3.0)
    assert surge - afternoon == pytest.approx(10, abs=0.3)  # the night dip is over by then
    assert night - afternoon == pytest.approx(-12, abs=0.5)
    assert afternoon == pytest.approx(140, abs=0.5) and afternoon_dia == pytest.approx(88, abs=0.5)


def test_generated_readings_show_the_morning_surge() -> None:
    body = cuff_patients(4, "systolic = 140, diastolic = 88, morning_surge = 10")
    readings = list(run(body, days=60).all_readings())
    morning = [bp(r).systolic for r in readings if r.true_time.hour == 7]
    evening = [bp(r).systolic for r in readings if r.true_time.hour == 20]
    assert len(morning) == len(evening) == 4 * 60
    # At 07:00 the surge (peak 08:00, SD 1.5 h) is at 80 % (+8 mmHg) and the end of the night
    # dip (deepest at 03:00) takes back less than 1 mmHg.
    assert statistics.mean(morning) - statistics.mean(evening) == pytest.approx(7.2, abs=1.2)


def test_within_person_sd_is_about_5_mmhg() -> None:
    body = cuff_patients(5, "systolic = 135, diastolic = 85", duplicates=2)
    readings = list(run(body, days=60).all_readings())
    residual_sys = [bp(r).systolic - bp(r).true_systolic for r in readings]
    residual_dia = [bp(r).diastolic - bp(r).true_diastolic for r in readings]
    assert len(residual_sys) == 5 * 60 * 4
    assert statistics.stdev(residual_sys) == pytest.approx(5.0, abs=0.3)
    assert statistics.stdev(residual_dia) == pytest.approx(3.5, abs=0.3)
    assert abs(statistics.mean(residual_sys)) < 0.4
    # Diastolic stays well below systolic, as in a living patient.
    assert all(bp(r).systolic - bp(r).diastolic >= 20 for r in readings)


def test_deterioration_raises_systolic_by_its_slope_then_stays() -> None:
    body = (
        cuff_patients(1, "systolic = 130, diastolic = 82", duplicates=2)
        + """
[[patients.events]]
kind = "deterioration"
day = 10
time = "00:00"
slope_mmhg_per_day = 1.0
duration_days = 21
"""
    )
    readings = list(run(body, days=50).all_readings())

    def day_of(r) -> float:
        return (r.true_time - START) / timedelta(days=1)

    during = [(day_of(r), bp(r).systolic) for r in readings if 10 <= day_of(r) < 31]
    before = [(day_of(r), bp(r).systolic) for r in readings if day_of(r) < 10]
    after = [(day_of(r), bp(r).systolic) for r in readings if day_of(r) >= 31]
    slope = stats.theilslopes([s for _, s in during], [d for d, _ in during]).slope
    assert slope == pytest.approx(1.0, abs=0.2)
    assert abs(stats.theilslopes([s for _, s in before], [d for d, _ in before]).slope) < 0.6
    assert abs(stats.theilslopes([s for _, s in after], [d for d, _ in after]).slope) < 0.4
    rise = statistics.mean(s for _, s in after) - statistics.mean(s for _, s in before)
    assert rise == pytest.approx(21, abs=2.5)


def test_medication_change_reaches_its_effect_over_the_onset() -> None:
    start = at(0)
    model = BloodPressureModel(
        BloodPressureProfile(150, 95, 72, morning_surge=0, night_dip=0),
        medication_changes=(MedicationChange(start + timedelta(days=5), -15, onset_days=5),),
    )
    assert model.true_pressure(start + timedelta(days=4), 12.0)[0] == pytest.approx(150)
    assert model.true_pressure(start + timedelta(days=7.5), 12.0)[0] == pytest.approx(142.5)
    assert model.true_pressure(start + timedelta(days=20), 12.0)[0] == pytest.approx(135)


def test_medication_from_the_start_lowers_pressure_most_after_the_dose() -> None:
    model = BloodPressureModel(
        BloodPressureProfile(150, 95, 72, morning_surge=0, night_dip=0, medication_effect=-10)
    )
    peak, trough = model.true_pressure(at(12), 12.0)[0], model.true_pressure(at(0), 0.0)[0]
    assert peak == pytest.approx(140) and trough == pytest.approx(143)


def test_deterioration_offset_is_capped_at_its_duration() -> None:
    d = Deterioration(at(0), 1.5, 10)
    assert [d.offset(at(0, day)) for day in (-1, 0, 4, 10, 30)] == [0, 0, 6, 15, 15]


def test_crisis_is_measured_and_remeasured_five_minutes_later() -> None:
    body = (
        cuff_patients(1)
        + """
[[patients.events]]
kind = "hypertensive_crisis"
day = 3
time = "15:10"
systolic = 198
diastolic = 118
"""
    )
    readings = [r for r in run(body, days=7).all_readings() if r.event != "scheduled"]
    first, second = readings
    assert (first.event, second.event) == ("hypertensive_crisis", "crisis_remeasure")
    assert first.true_time == at(15 + 10 / 60, 3)
    assert second.true_time - first.true_time == timedelta(minutes=5)
    assert bp(first).true_systolic == 198 and bp(second).true_systolic == 194
    assert bp(first).systolic > 180 and bp(second).systolic > 180


def test_recurring_irregular_pulse_flags_its_share_inside_the_window_only() -> None:
    body = (
        cuff_patients(1, duplicates=2)
        + """
[[patients.events]]
kind = "irregular_pulse"
day = 5
time = "00:00"
duration_days = 20
share_of_readings = 0.4
"""
    )
    readings = list(run(body, days=60).all_readings())
    inside = [r for r in readings if at(0, 5) <= r.true_time < at(0, 25)]
    outside = [r for r in readings if not at(0, 5) <= r.true_time < at(0, 25)]
    flagged = [bp(r).status.irregular_pulse for r in inside]
    assert sum(flagged) / len(flagged) == pytest.approx(0.4, abs=0.08)
    assert not any(bp(r).status.irregular_pulse for r in outside)
    assert all("irregular_pulse" in r.labels for r in inside if bp(r).status.irregular_pulse)
    # An irregular rhythm makes the pulse more variable.
    irregular = [bp(r).pulse for r in inside if bp(r).status.irregular_pulse]
    regular = [bp(r).pulse for r in outside]
    assert statistics.stdev(irregular) > 2 * statistics.stdev(regular)


# --- glucose ------------------------------------------------------------------------------------


def test_meal_rises_to_its_peak_about_an_hour_later_and_falls_back() -> None:
    profile = GlucoseProfile(
        6.0, day_to_day_sd=0, meal_rise=4.0, meal_times=(time(8),), meal_jitter_minutes=0
    )
    day = GlucoseModel(profile).day(UTC_DAY, UTC, np.random.default_rng(1))
    curve = {m: day.true_value(at(8 + m / 60)) for m in range(0, 300, 5)}
    peak_minute = max(curve, key=curve.__getitem__)
    assert peak_minute == 60
    meal_at, rise = day.meals[0]
    assert meal_at == at(8)
    assert curve[60] - day.fasting == pytest.approx(rise)
    assert day.true_value(at(7.5)) == pytest.approx(day.fasting)
    assert curve[180] - day.fasting < 0.2 * rise  # mostly back after three hours


def test_post_prandial_readings_are_higher_than_fasting_ones() -> None:
    body = meter_patients(
        3,
        'fasting = 6.5, meal_rise = 4.0, meals = ["08:00", "13:00", "19:00"]',
        times='["07:30", "09:00"]',
    )
    readings = list(run(body, days=30).all_readings())
    fasting = [glucose(r).mmol_per_l for r in readings if r.true_time.hour == 7]
    after = [glucose(r).mmol_per_l for r in readings if r.true_time.hour == 9]
    assert statistics.mean(fasting) == pytest.approx(6.5, abs=0.3)
    assert statistics.mean(after) - statistics.mean(fasting) > 2.5


def test_hypoglycaemia_readings_are_below_3_mmol_and_the_recheck_is_higher() -> None:
    body = (
        meter_patients(2)
        + """
[[patients.events]]
kind = "hypoglycaemia"
days = [1, 12]
count = 3
hours = [10, 22]
nadir = [2.5, 0.1]
"""
    )
    readings = list(run(body, days=14).all_readings())
    hypos = [r for r in readings if r.event == "hypoglycaemia"]
    rechecks = [r for r in readings if r.event == "hypoglycaemia_recheck"]
    assert len(hypos) == len(rechecks) == 6
    assert all(glucose(r).mmol_per_l < HYPO_LEVEL_2 for r in hypos)
    for hypo, recheck in zip(hypos, rechecks, strict=True):
        assert recheck.true_time - hypo.true_time == timedelta(minutes=15)
        assert glucose(recheck).true_mmol_per_l > glucose(hypo).true_mmol_per_l
    scheduled = [glucose(r).mmol_per_l for r in readings if r.event == "scheduled"]
    assert min(scheduled) > 3.9  # outside the episodes nothing is low


def test_hypoglycaemia_depth_is_a_half_sine_down_to_the_nadir() -> None:
    hypo = Hypoglycaemia(at(12), 2.4, timedelta(minutes=40))
    assert hypo.depth(at(11.9)) == 0 and hypo.depth(at(12.7)) == 0
    assert hypo.depth(at(12 + 20 / 60)) == pytest.approx(1.0)
    profile = GlucoseProfile(6.0, day_to_day_sd=0, meal_times=(), meal_jitter_minutes=0)
    day = GlucoseModel(profile, hypos=(hypo,)).day(UTC_DAY, UTC, np.random.default_rng(1))
    assert day.true_value(at(12 + 20 / 60)) == pytest.approx(2.4)
    assert day.true_value(hypo.measure_at) < 2.6


def test_worsening_control_raises_fasting_glucose_over_weeks() -> None:
    body = (
        meter_patients(3, "fasting = 7.0, day_to_day_sd = 0.3", times='["07:00"]')
        + """
[[patients.events]]
kind = "worsening_control"
day = 7
time = "00:00"
fasting_per_day = 0.1
duration_days = 20
"""
    )
    readings = list(run(body, days=40).all_readings())
    first_week = [glucose(r).mmol_per_l for r in readings if r.true_time < at(0, 7)]
    last_week = [glucose(r).mmol_per_l for r in readings if r.true_time >= at(0, 30)]
    assert statistics.mean(last_week) - statistics.mean(first_week) == pytest.approx(2.0, abs=0.4)


def test_fasting_glucose_varies_from_day_to_day() -> None:
    body = meter_patients(1, "fasting = 7.0, day_to_day_sd = 0.6", times='["07:00"]')
    values = [glucose(r).true_mmol_per_l for r in run(body, days=80).all_readings()]
    assert statistics.stdev(values) == pytest.approx(0.6, abs=0.15)


def test_a_reading_beyond_the_meter_range_is_hi() -> None:
    body = meter_patients(1, 'fasting = 24, meal_rise = 15, meals = ["08:00"]', times='["09:00"]')
    readings = list(run(body, days=20).all_readings())
    high = [r for r in readings if glucose(r).out_of_range == "high"]
    assert high, "no reading was beyond 33.3 mmol/L"
    for r in high:
        assert glucose(r).mmol_per_l is None and glucose(r).true_mmol_per_l > 25
        assert "meter_range" in r.labels
        measurement, _ = r.glucose()
        assert measurement.concentration_mmol_per_l() is None
        assert measurement.sensor_status is not None
        assert "result_higher_than_device_can_process" in measurement.sensor_status.set_names
    assert all(
        math.isclose(glucose(r).mmol_per_l or 0, round(glucose(r).mmol_per_l * 18.016) / 18.016)
        for r in readings
        if glucose(r).mmol_per_l is not None
    )
