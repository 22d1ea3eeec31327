"""Batch rules over windows: averages, recurring findings, glucose, adherence, device health."""

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from alerting import (
    BloodPressureColumns,
    DeviceStatus,
    InputError,
    MeasurementSchedule,
    RuleState,
    Severity,
    Target,
    evaluate_batch,
    evaluate_patient,
)
from alerting.summaries.blood_pressure import home_bp_protocol_mean
from tests.unit.alerting.builders import (
    MOSCOW,
    at_day,
    bp,
    bp_series,
    glucose,
    history,
    profile,
)

HOME = "bp.home_mean_above_target"


def run(readings=(), glucose_readings=(), devices=(), who=None, day=8.0):
    who = who or profile("I10", enrolled_at=at_day(-30))
    return evaluate_patient(who, history(readings, glucose_readings, devices), at=at_day(day))


def decision(evaluation, rule_id):
    [d] = [d for d in evaluation.decisions if d.rule_id == rule_id]
    return d


# ---- home blood-pressure mean --------------------------------------------------------------


def test_protocol_mean_above_target_fires_with_the_numbers_a_clinician_needs():
    readings = bp_series(8, systolic=136, diastolic=84, sd=0.01, morning_surge=6)
    ev = run(readings)
    d = decision(ev, HOME)
    assert d.severity is Severity.WARNING and d.rule_version == 1
    stats = d.evidence["statistics"]
    assert (stats["systolic_mean_mmhg"], stats["diastolic_mean_mmhg"]) == (139.0, 85.5)
    assert (stats["readings"], stats["days"]) == (24, 6)
    assert stats["morning_mmhg"] == [142.0, 87.0] and stats["evening_mmhg"] == [136.0, 84.0]
    assert "139/86 mmHg over 24 readings on 6 days (2026-10-03 to 2026-10-08" in d.explanation
    assert "first day discarded" in d.explanation
    assert "target of 135/85 mmHg (the hypertension programme default)" in d.explanation
    assert len(d.evidence["reading_ids"]) == 24 and "r1-m1" not in d.evidence["reading_ids"]


def test_the_batch_mean_is_the_summary_modules_mean():
    readings = bp_series(9, systolic=131, diastolic=83, seed=4)
    ev = run(readings, day=9)
    ref = home_bp_protocol_mean(readings, end=at_day(9), tz=MOSCOW)
    assert ev.statistics["home_systolic_mean"] == pytest.approx(ref.systolic)
    assert ev.statistics["home_diastolic_mean"] == pytest.approx(ref.diastolic)
    assert ev.statistics["home_readings"] == ref.readings


@pytest.mark.parametrize(
    ("systolic", "diastolic", "state"),
    [(126, 78, RuleState.CLEAR), (127, 83, RuleState.HOLD), (136, 70, RuleState.FIRED)],
    ids=["well-below", "in-the-hysteresis-band", "systolic-alone"],
)
def test_hysteresis_between_firing_and_clear(systolic, diastolic, state):
    readings = bp_series(8, systolic=systolic - 3, diastolic=diastolic - 1.5, sd=0.01)
    assert run(readings).states[HOME] is state


def test_a_clinicians_lower_target_is_used_and_quoted():
    target = Target(130, "Dr Ivanova", at_day(-10))
    who = profile("I10", targets={"home_systolic_mmhg": target}, enrolled_at=at_day(-30))
    readings = bp_series(8, systolic=129, diastolic=78, sd=0.01)  # mean 132/79.5
    assert run(readings).states[HOME] is RuleState.HOLD
    d = decision(run(readings, who=who), HOME)
    assert "target of 130/85 mmHg (the patient's target set by Dr Ivanova on 2026-09-20" in (
        d.explanation
    )
    assert d.evidence["statistics"]["target_mmhg"] == [130, 85]


def test_too_few_readings_is_insufficient_not_an_alert():
    readings = [r for r in bp_series(8, systolic=160, diastolic=100) if r.reading_id.endswith("e1")]
    ev = run(readings)  # 7 evening readings, 6 after the first day
    assert ev.states[HOME] is RuleState.INSUFFICIENT_DATA
    assert all(d.rule_id != HOME for d in ev.decisions)


def test_unit_mix_ups_and_spikes_do_not_move_the_mean():
    clean = bp_series(8, systolic=128, diastolic=80, sd=0.01)
    dirty = [*clean, bp("kpa", 5, 8, 17.3, 11.3), bp("spike", 6, 7 + 1 / 60, 210, 120)]
    assert (
        run(dirty).statistics["home_systolic_mean"] == run(clean).statistics["home_systolic_mean"]
    )


def test_readings_with_corrected_or_estimated_times_still_count():
    readings = bp_series(8, systolic=128, diastolic=80, sd=0.01)
    marked = [
        replace(
            r, time_source="device_corrected" if i % 2 else "received", clock_status="corrected"
        )
        for i, r in enumerate(readings)
    ]
    assert run(marked).statistics["home_readings"] == run(readings).statistics["home_readings"]


def test_mornings_and_evenings_are_the_patients_local_ones():
    far_east = profile("I10", timezone="Asia/Vladivostok", enrolled_at=at_day(-30))
    # 07:00 Moscow is 14:00 in Vladivostok: neither morning nor evening there.
    ev = run(bp_series(8, systolic=150, diastolic=90, sd=0.01), who=far_east)
    assert decision(ev, HOME).evidence["statistics"]["morning_mmhg"] == [None, None]


# ---- recurring irregular pulse -------------------------------------------------------------


@pytest.mark.parametrize(
    ("flagged", "state"),
    [
        ({"r2-m1", "r2-e1", "r5-m1"}, RuleState.FIRED),
        ({"r2-m1", "r2-m2", "r2-e1"}, RuleState.HOLD),  # one day only
        (set(), RuleState.CLEAR),
    ],
    ids=["recurring", "one-day", "none"],
)
def test_irregular_pulse_that_recurs_is_a_finding(flagged, state):
    readings = [
        replace(r, flags=frozenset({"irregular_pulse"})) if r.reading_id in flagged else r
        for r in bp_series(8)
    ]
    ev = run(readings)
    assert ev.states["bp.irregular_pulse_recurrent"] is state
    if state is RuleState.FIRED:
        d = decision(ev, "bp.irregular_pulse_recurrent")
        assert "irregular pulse on 3 of 32 readings" in d.explanation
        assert "on 2 different days" in d.explanation and "ECG" in d.explanation
        assert sorted(d.evidence["reading_ids"]) == sorted(flagged)


# ---- adherence ------------------------------------------------------------------------------


def test_fewer_readings_than_prescribed():
    once_a_day = [r for r in bp_series(15) if r.reading_id.endswith("m1")]
    d = decision(run(once_a_day[:-3], day=15), "adherence.blood_pressure")  # 11 in 14 days
    assert "11 blood-pressure readings in the last 14 days, 39 % of the 28 prescribed" in (
        d.explanation
    )
    assert run(once_a_day, day=15).states["adherence.blood_pressure"] is RuleState.CLEAR  # 50 %


def test_no_readings_for_days():
    readings = bp_series(10)
    d = decision(run(readings, day=15), "adherence.blood_pressure")
    assert "No blood-pressure readings for 5 days (last 2026-10-10 19:02 MSK)" in d.explanation
    assert d.evidence["statistics"]["days_without_readings"] == 5.2


def test_a_new_patient_is_not_judged_on_a_fortnight_they_were_not_enrolled_for():
    who = profile("I10", enrolled_at=at_day(0))
    ev = run(bp_series(3), who=who, day=3)
    assert ev.states["adherence.blood_pressure"] is RuleState.CLEAR
    silent = run([], who=who, day=5)
    assert (
        "No blood-pressure readings since enrolment 5 days ago"
        in decision(silent, "adherence.blood_pressure").explanation
    )


def test_no_schedule_no_adherence_rule():
    who = profile("I10", schedule=MeasurementSchedule(blood_pressure_per_week=0))
    assert "adherence.blood_pressure" not in run([], who=who).states


# ---- glucose ---------------------------------------------------------------------------------


def diabetic(**kwargs):
    return profile("E11", enrolled_at=at_day(-30), **kwargs)


def twice_daily(days, value=6.5, prefix="g"):
    return [
        glucose(f"{prefix}{d}-{h}", d, h, value + (0.8 if h == 19 else 0.0))
        for d in range(days)
        for h in (7, 19)
    ]


def test_recurrent_hypoglycaemia():
    readings = [
        *twice_daily(14),
        glucose("h1", 10, 3, 3.5),
        glucose("h1b", 10, 3.2, 3.6),  # the same event, 12 min later
        glucose("h2", 12, 23, 2.8),
        glucose("ctl", 11, 12, 2.5, control_solution=True),  # never counts
    ]
    ev = run(glucose_readings=readings, who=diabetic(), day=14)
    d = decision(ev, "glucose.hypo_frequency")
    assert d.severity is Severity.WARNING
    assert (
        d.evidence["statistics"]["events"] == 2 and d.evidence["statistics"]["level_2_events"] == 1
    )
    assert "2 hypoglycaemia events" in d.explanation and "lowest 2.8 mmol/L" in d.explanation
    assert "ctl" not in d.evidence["reading_ids"]
    relaxed = diabetic(targets={"hypo_events_per_week_max": Target(2, "Dr B", at_day(-5))})
    assert (
        run(glucose_readings=readings, who=relaxed, day=14).states["glucose.hypo_frequency"]
        is RuleState.CLEAR
    )


def test_two_level_2_events_in_a_week_are_high():
    readings = [*twice_daily(14), glucose("a", 9, 3, 2.7), glucose("b", 12, 3, 2.9)]
    ev = run(glucose_readings=readings, who=diabetic(), day=14)
    assert decision(ev, "glucose.hypo_frequency").severity is Severity.HIGH


def test_time_below_range():
    readings = [*twice_daily(14), glucose("l1", 5, 12, 3.6), glucose("l2", 9, 12, 3.7)]
    ev = run(glucose_readings=readings, who=diabetic(), day=14)
    d = decision(ev, "glucose.time_below_range")
    assert "2 of 30 glucose readings (7 %)" in d.explanation and "not of time" in d.explanation
    one_low = [*twice_daily(14), glucose("l1", 5, 12, 3.6)]  # one low reading is not a share
    assert (
        run(glucose_readings=one_low, who=diabetic(), day=14).states["glucose.time_below_range"]
        is RuleState.CLEAR
    )


def test_glucose_variability():
    swinging = [glucose(f"s{i}", i / 2, 7, 4.5 if i % 2 else 11.5) for i in range(28)]
    ev = run(glucose_readings=swinging, who=diabetic(), day=14)
    d = decision(ev, "glucose.variability")
    assert d.evidence["statistics"]["cv_percent"] == pytest.approx(44.6, abs=0.1)
    assert "above 36 %" in d.explanation
    steady = run(glucose_readings=twice_daily(14), who=diabetic(), day=14)
    assert steady.states["glucose.variability"] is RuleState.CLEAR
    # CV 34 %: below the limit, not yet 4 points below it (hysteresis).
    hovering = [glucose(f"h{i}", i / 2, 7, 5.33 if i % 2 else 10.67) for i in range(28)]
    ev = run(glucose_readings=hovering, who=diabetic(), day=14)
    assert ev.statistics["glucose_cv_percent"] == pytest.approx(34.0, abs=0.2)
    assert ev.states["glucose.variability"] is RuleState.HOLD
    few = run(glucose_readings=swinging[:10], who=diabetic(), day=14)
    assert few.states["glucose.variability"] is RuleState.INSUFFICIENT_DATA


# ---- device health -------------------------------------------------------------------------


def device(**kwargs):
    return DeviceStatus(**{"device_key": "A&D/UA-651BLE/5051", "kind": "blood_pressure", **kwargs})


@pytest.mark.parametrize(
    ("status", "rule", "severity", "text"),
    [
        (device(battery_percent=12), "device.battery_low", Severity.INFO, "battery 12 %"),
        (
            device(kind="glucose", battery_low=True),
            "device.battery_low",
            Severity.INFO,
            "glucose meter A&D/UA-651BLE/5051: battery low (device flag)",
        ),
        (device(clock_status="unset"), "device.clock", Severity.WARNING, "clock not set"),
        (
            device(clock_status="corrected", clock_offset_seconds=-1500),
            "device.clock",
            Severity.INFO,
            "clock was -25 min off",
        ),
        (
            device(last_contact_at=at_day(3)),
            "device.silent",
            Severity.WARNING,
            "no gateway contact for 5 days",
        ),
    ],
)
def test_device_health(status, rule, severity, text):
    ev = run(bp_series(8), devices=[status])
    d = decision(ev, rule)
    assert d.severity is severity and text in d.explanation
    assert d.evidence["devices"] == ["A&D/UA-651BLE/5051"]


def test_healthy_devices_are_clear_and_unknown_contact_is_insufficient():
    ok = device(battery_percent=80, clock_status="corrected", clock_offset_seconds=90)
    ev = run(bp_series(8), devices=[ok])
    assert ev.states["device.battery_low"] is RuleState.CLEAR
    assert ev.states["device.clock"] is RuleState.CLEAR  # a 90 s correction is not news
    assert ev.states["device.silent"] is RuleState.INSUFFICIENT_DATA


# ---- streaming rules' all-clear --------------------------------------------------------------


def test_crisis_clears_only_below_the_hysteresis_threshold():
    crisis = [bp("c1", 7, 7, 192, 118), bp("c2", 7, 7.1, 188, 116)]
    after = [bp("a1", 7, 19, 170, 98), bp("a2", 8, 7, 150, 92), bp("a3", 8, 19, 148, 90)]
    ev = run([*bp_series(7), *crisis, *after], day=9)
    assert ev.states["bp.hypertensive_crisis"] is RuleState.CLEAR
    assert ev.clear_since["bp.hypertensive_crisis"] == at_day(8) + timedelta(hours=7)
    still = run([*bp_series(7), *crisis, after[0]], day=8)
    assert still.states["bp.hypertensive_crisis"] is RuleState.HOLD


# ---- the cohort and the patient agree; bad input -------------------------------------------


def test_a_cohort_batch_gives_each_patient_what_their_own_evaluation_gives():
    who = [profile("I10", pid=f"p{i}", enrolled_at=at_day(-30)) for i in range(3)]
    series = [
        bp_series(20, systolic=140, seed=1, prefix="a"),
        bp_series(20, systolic=120, seed=2, prefix="b"),
        bp_series(20, systolic=125, rise_from_day=15, rise=20, seed=3, prefix="c"),
    ]
    batch = evaluate_batch(
        who, at=at_day(20), blood_pressure=BloodPressureColumns.from_observations(series)
    )
    for p, readings in zip(who, series, strict=True):
        alone = evaluate_patient(p, history(readings), at=at_day(20))
        assert {r: batch.state(p.patient_id, r) for r in alone.states} == alone.states
        assert (
            batch.decisions.get(p.patient_id, [])
            == alone.decisions
            == batch.decisions_for(p.patient_id)
        )
    assert batch.fired("bp.rising_trend") == ["p2"]


def test_bad_columns_are_input_errors():
    who = [profile("I10")]
    with pytest.raises(InputError, match="patient 3, of 1"):
        evaluate_batch(
            who,
            at=at_day(1),
            blood_pressure=BloodPressureColumns.from_arrays([3], [0.0], [120.0], [80.0]),
        )
    with pytest.raises(InputError, match="has 2 rows, expected 1"):
        BloodPressureColumns.from_arrays([0], [0.0, 1.0], [120.0], [80.0])
    with pytest.raises(InputError, match="time-zone aware"):
        evaluate_batch(who, at=at_day(1).replace(tzinfo=None))
    naive = bp("x", 0, 7, 120, 80)
    naive = replace(naive, measured_at=naive.measured_at.replace(tzinfo=None))
    with pytest.raises(InputError, match="no UTC offset"):
        BloodPressureColumns.from_observations([[naive]])


def test_readings_after_the_evaluation_time_are_ignored():
    readings = bp_series(8, systolic=128, diastolic=79, sd=0.01)
    future = [bp(f"f{i}", 9, 7 + i / 60, 180, 110) for i in range(20)]
    assert run(readings).states[HOME] is run([*readings, *future]).states[HOME]
    assert np.isclose(run(readings).statistics["home_systolic_mean"], 131.0)


def test_every_decision_is_plain_json_the_ingest_server_can_store():
    readings = [
        *bp_series(30, systolic=150, diastolic=95, rise_from_day=24, rise=20, seed=8),
        bp("irr1", 26, 8, 150, 90, flags=("irregular_pulse",)),
        bp("irr2", 27, 8, 150, 90, flags=("irregular_pulse",)),
        bp("irr3", 28, 8, 150, 90, flags=("irregular_pulse",)),
    ]
    lows = [glucose(f"g{d}", d, 7, 2.9 if d % 2 == 0 else 9.5) for d in range(30)]
    devices = [
        DeviceStatus(
            "cuff",
            "blood_pressure",
            last_contact_at=at_day(20),
            battery_percent=9,
            clock_status="unset",
        ),
    ]
    who = profile("I10", "E10", enrolled_at=at_day(-30))
    ev = run(readings, lows, devices, who=who, day=30)
    fired = {d.rule_id for d in ev.decisions}
    assert {
        HOME,
        "bp.rising_trend",
        "bp.irregular_pulse_recurrent",
        "glucose.hypo_frequency",
        "glucose.time_below_range",
        "glucose.variability",
        "adherence.glucose",
        "device.battery_low",
        "device.clock",
        "device.silent",
    } <= fired
    for d in ev.decisions:
        _assert_plain(d.evidence, d.rule_id)
        assert d.explanation.endswith(".") and d.programme in ("hypertension", "diabetes_type_1")


def _assert_plain(value, where):
    if isinstance(value, dict):
        for k, v in value.items():
            assert type(k) is str, where
            _assert_plain(v, f"{where}.{k}")
    elif isinstance(value, list):
        for v in value:
            _assert_plain(v, where)
    else:
        assert type(value) in (str, int, float, bool, type(None)), (where, type(value))
