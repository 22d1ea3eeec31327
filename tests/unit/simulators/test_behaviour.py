"""How virtual patients use their devices: schedule and duplicates, adherence (skipped days,
weekends only, stopping), artefacts (movement, loose cuff, NaN), double presses, meal tags and
control-solution tests."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from datetime import date, datetime, time, timedelta

import numpy as np
import pytest

from device_simulators.behaviour import Adherence, Artefacts, Schedule
from gateway.codec import BloodPressureMeasurement
from gateway.codec.glucose_context import Meal
from tests.unit.simulators.sim_support import START, bp, cuff_patients, glucose, meter_patients, run

UTC_DAY = START.date()


def test_morning_and_evening_duplicates_two_minutes_apart() -> None:
    readings = list(run(cuff_patients(duplicates=2), days=3).all_readings())
    times = [r.true_time.strftime("%H:%M") for r in readings]
    assert times == ["07:00", "07:02", "20:00", "20:02"] * 3
    assert all(r.event == "scheduled" for r in readings)


def test_jitter_moves_sessions_but_keeps_the_gap_and_the_day() -> None:
    body = cuff_patients(duplicates=2).replace(
        "duplicates = 2", "duplicates = 2\njitter_minutes = 30"
    )
    readings = list(run(body, days=30).all_readings())
    firsts, seconds = readings[0::2], readings[1::2]
    assert all(
        b.true_time - a.true_time == timedelta(minutes=2)
        for a, b in zip(firsts, seconds, strict=True)
    )
    morning = [
        (r.true_time - datetime.combine(r.true_time.date(), time(7), r.true_time.tzinfo))
        for r in firsts
        if r.true_time.hour < 12
    ]
    offsets = [m / timedelta(minutes=1) for m in morning]
    assert len(set(offsets)) > 10 and max(map(abs, offsets)) <= 90  # clipped at 3 SD


def test_schedule_sessions_are_in_the_patients_zone() -> None:
    from zoneinfo import ZoneInfo

    moscow = ZoneInfo("Europe/Moscow")
    schedule = Schedule((time(7, 0),), duplicates=2)
    sessions = schedule.sessions(date(2026, 3, 2), moscow, np.random.default_rng(0))
    assert [s.at.astimezone(moscow).strftime("%H:%M") for s in sessions] == ["07:00", "07:02"]
    assert [(s.slot, s.repeat) for s in sessions] == [(0, 0), (0, 1)]


def test_skipped_days_are_about_the_probability_given() -> None:
    body = cuff_patients(5, extra="adherence = { skip_day = 0.3 }")
    generated = run(body, days=60)
    periods = [e for e in generated.truth if e.kind == "non_adherence"]
    skipped_days = sum(e.values["days"] for e in periods)
    assert {e.values["reason"] for e in periods} == {"skipped"}
    assert skipped_days / (5 * 60) == pytest.approx(0.3, abs=0.06)
    assert generated.reading_count() == (5 * 60 - skipped_days) * 2


def test_weekends_only_patients_measure_on_saturdays_and_sundays() -> None:
    body = cuff_patients(2, extra="adherence = { weekends_only = true }")
    generated = run(body, days=28)
    weekdays = Counter(r.true_time.weekday() for r in generated.all_readings())
    assert set(weekdays) == {5, 6}
    assert generated.reading_count() == 2 * 8 * 2  # 2 patients, 8 weekend days, 2 a day
    periods = [e for e in generated.truth if e.kind == "non_adherence"]
    assert len(periods) == 2 * 4  # Monday to Friday, four weeks, each patient
    assert all(e.values == {"reason": "weekends_only", "days": 5} for e in periods)


def test_a_patient_who_stops_measures_no_more_not_even_in_a_crisis() -> None:
    body = (
        cuff_patients(1, extra="adherence = { stop_after_day = 4 }")
        + """
[[patients.events]]
kind = "hypertensive_crisis"
day = 6
time = "12:00"
"""
    )
    generated = run(body, days=10)
    last = max(r.true_time for r in generated.all_readings())
    assert last.date() == UTC_DAY + timedelta(days=3)
    [stopped] = [e for e in generated.truth if e.kind == "non_adherence"]
    assert stopped.values == {"reason": "stopped", "days": 6}
    assert stopped.end == generated.end
    [crisis] = [e for e in generated.truth if e.kind == "hypertensive_crisis"]
    assert crisis.values["measured"] is False


def test_skipped_sessions_drop_both_readings_of_the_session() -> None:
    body = cuff_patients(3, duplicates=2, extra="adherence = { skip_session = 0.25 }")
    readings = list(run(body, days=40).all_readings())
    per_session = Counter((r.patient_id, r.true_time.date(), r.true_time.hour) for r in readings)
    assert set(per_session.values()) == {2}
    assert len(per_session) / (3 * 40 * 2) == pytest.approx(0.75, abs=0.06)


def test_artefacts_flag_movement_and_a_loose_cuff_that_sometimes_fails() -> None:
    body = cuff_patients(
        4,
        duplicates=2,
        extra=("artefacts = { movement = 0.1, loose_cuff = 0.1, loose_cuff_nan = 0.5 }"),
    )
    generated = run(body, days=40)
    readings = list(generated.all_readings())
    n = len(readings)
    moved = [r for r in readings if bp(r).status.body_movement]
    loose = [r for r in readings if bp(r).status.cuff_too_loose]
    failed = [r for r in readings if bp(r).failed]
    assert len(moved) / n == pytest.approx(0.1, abs=0.03)
    assert len(loose) / n == pytest.approx(0.1, abs=0.03)
    assert len(failed) / len(loose) == pytest.approx(0.5, abs=0.15)
    assert all(r in loose for r in failed)
    assert all("movement" in r.labels for r in moved)
    for r in failed:
        decoded = BloodPressureMeasurement.from_bytes(bytes(r.blood_pressure())).in_mmhg()
        assert (decoded.systolic, decoded.diastolic, decoded.pulse_rate) == (None, None, None)
        assert math.isnan(bp(r).systolic) and "failed" in r.labels
    # Moving makes the reading noisier than sitting still.
    still = [
        bp(r).systolic - bp(r).true_systolic
        for r in readings
        if not bp(r).status.body_movement and not bp(r).failed
    ]
    moving = [bp(r).systolic - bp(r).true_systolic for r in moved if not bp(r).failed]
    assert np.std(moving) > 1.4 * np.std(still)
    artefact_events = [e for e in generated.truth if e.kind == "artefact"]
    assert len(artefact_events) == len({id(r) for r in moved + loose})


def test_double_presses_add_a_reading_within_a_minute_and_a_half() -> None:
    body = cuff_patients(3, extra="artefacts = { duplicate_press = 0.2 }")
    readings = list(run(body, days=40).all_readings())
    doubles = [r for r in readings if r.event == "duplicate_press"]
    scheduled = [r for r in readings if r.event == "scheduled"]
    assert len(scheduled) == 3 * 40 * 2
    assert len(doubles) / len(scheduled) == pytest.approx(0.2, abs=0.05)
    by_device = {}
    for r in readings:
        by_device.setdefault(r.patient_id, []).append(r)
    for series in by_device.values():
        for before, r in itertools.pairwise(series):
            if r.event == "duplicate_press":
                assert before.event == "scheduled"
                assert (
                    timedelta(seconds=30) <= r.true_time - before.true_time <= timedelta(seconds=90)
                )


def test_meal_tags_and_control_solution_tests_on_the_meter() -> None:
    body = meter_patients(
        2,
        times='["07:30", "21:00"]',
        device_extra='meals = ["fasting", "none"]\ntag_probability = 0.6\n'
        "control_solution_every_days = 5",
    )
    readings = list(run(body, days=60).all_readings())
    morning = [r for r in readings if r.event == "scheduled" and r.true_time.hour == 7]
    evening = [r for r in readings if r.event == "scheduled" and r.true_time.hour == 21]
    tagged = [r for r in morning if glucose(r).meal is Meal.FASTING]
    assert len(tagged) / len(morning) == pytest.approx(0.6, abs=0.1)
    assert all(glucose(r).meal is None for r in evening)
    controls = [r for r in readings if r.event == "control_solution"]
    assert len(controls) / (2 * 60) == pytest.approx(0.2, abs=0.07)
    for r in controls:
        measurement, context = r.glucose()
        assert measurement.is_control_solution and context is None
        assert glucose(r).mmol_per_l == pytest.approx(6.5, abs=1.0)
    for r in tagged:
        _, context = r.glucose()
        assert context is not None and context.meal is Meal.FASTING


def test_adherence_and_artefacts_refuse_impossible_probabilities() -> None:
    with pytest.raises(ValueError, match="skip_day"):
        Adherence(skip_day=1.5)
    with pytest.raises(ValueError, match="movement"):
        Artefacts(movement=-0.1)
    with pytest.raises(ValueError, match="duplicates"):
        Schedule((time(7),), duplicates=0)


def test_readings_stay_in_time_order_across_midnight_and_never_share_a_moment() -> None:
    body = (
        cuff_patients(1)
        + """
[[patients.events]]
kind = "hypertensive_crisis"
day = 1
time = "23:58"

[[patients.events]]
kind = "hypertensive_crisis"
day = 2
time = "20:00"
"""
    )
    generated = run(body, days=4)
    [readings] = generated.readings.values()
    times = [r.true_time for r in readings]
    assert times == sorted(times) and len(set(times)) == len(times)
    late = next(r for r in readings if r.event == "crisis_remeasure")
    assert late.true_time == START + timedelta(days=2, minutes=3)
    # The evening reading of day 2 coincides with a crisis: it moves a minute on.
    day_2 = [r for r in readings if r.true_time.date() == UTC_DAY + timedelta(days=2)]
    assert [(r.true_time.strftime("%H:%M"), r.event) for r in day_2] == [
        ("00:03", "crisis_remeasure"),
        ("07:00", "scheduled"),
        ("20:00", "hypertensive_crisis"),
        ("20:01", "scheduled"),
        ("20:05", "crisis_remeasure"),
    ]
    assert all(e.values["measured"] for e in generated.truth if e.kind == "hypertensive_crisis")
