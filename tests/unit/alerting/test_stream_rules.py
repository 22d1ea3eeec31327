"""Streaming threshold rules: level-2 hypoglycaemia with confirmation, and the stream entry."""

from datetime import timedelta

import pytest

from alerting import Severity, evaluate_stream, stream_lookback
from tests.unit.alerting.builders import bp, glucose, history, profile

T2D = profile("E11")
LO = frozenset({"result_lower_than_device_can_process"})


def hypo(readings, new=None, who=T2D):
    return [
        d
        for d in evaluate_stream(who, history(glucose_readings=readings), new)
        if d.rule_id == "glucose.hypo_level_2"
    ]


@pytest.mark.parametrize(
    "value", [3.0, 3.5, 5.6, 12.0], ids=["at-3.0", "level-1", "normal", "high"]
)
def test_no_alert_without_a_level_2_value(value):
    assert hypo([glucose("a", 0, 7, value)]) == []


def test_a_single_level_2_reading_is_high_and_asks_for_a_re_check():
    [d] = hypo([glucose("a", 0, 7, 6.0), glucose("b", 0, 12, 2.7)])
    assert (d.severity, d.evidence["reading_ids"]) == (Severity.HIGH, ["b"])
    assert d.rule_version == 1 and d.programme == "diabetes_type_2"
    assert "2.7 mmol/L (49 mg/dL)" in d.explanation and "12:00 MSK" in d.explanation
    assert "re-check after 15 minutes" in d.explanation


def test_a_re_check_still_below_3_9_confirms_it_as_urgent():
    [d] = hypo([glucose("a", 0, 3, 2.6), glucose("b", 0, 3.25, 3.4)])
    assert d.severity is Severity.URGENT and d.evidence["reading_ids"] == ["a", "b"]
    assert d.evidence["statistics"]["lowest_mmol_l"] == 2.6
    assert "re-check 15 min apart (3.4 mmol/L (61 mg/dL) at the latest)" in d.explanation


def test_a_re_check_in_range_is_a_recovery_not_a_confirmation():
    [d] = hypo([glucose("a", 0, 3, 2.6), glucose("b", 0, 3.25, 4.8)])
    assert d.severity is Severity.HIGH
    assert d.evidence["statistics"]["later_recovery_reading_ids"] == ["b"]
    assert "A later reading was 4.8 mmol/L" in d.explanation


def test_readings_a_minute_apart_are_one_sitting_not_a_re_check():
    [d] = hypo([glucose("a", 0, 3, 2.6), glucose("b", 0, 3 + 1 / 60, 2.7)])
    assert d.severity is Severity.HIGH


def test_a_low_control_solution_test_never_alerts():
    assert hypo([glucose("ctl", 0, 7, 2.2, control_solution=True)]) == []


def test_a_lo_reading_counts_as_level_2():
    [d] = hypo([glucose("lo", 0, 7, None, sensor_status=LO)])
    assert d.severity is Severity.HIGH and "LO (below the meter's range)" in d.explanation


@pytest.mark.parametrize(
    "reading",
    [
        glucose("fault", 0, 7, 2.1, sensor_status=frozenset({"sample_size_insufficient"})),
        glucose("nan", 0, 7, None),
        glucose("mgdl", 0, 7, 45.0),  # mg/dL in the mmol/L field: implausible, not a hypo
    ],
    ids=["sensor-fault", "failed", "unit-mix-up"],
)
def test_unusable_readings_never_alert(reading):
    assert hypo([reading]) == []


def test_only_new_evidence_fires():
    readings = [glucose("a", 0, 3, 2.6), glucose("b", 1, 8, 6.0)]
    assert hypo(readings, new={"b"}) == []
    assert [d.evidence["reading_ids"] for d in hypo(readings, new={"a"})] == [["a"]]


def test_receive_times_are_flagged_in_the_explanation():
    [d] = hypo([glucose("a", 0, 3, 2.6, time_source="received")])
    assert d.evidence["statistics"]["time_estimated"]
    assert "receive times" in d.explanation


def test_the_programme_decides_which_streaming_rules_run():
    bp_crisis = history(bp_readings=[bp("c", 0, 7, 190, 110)])
    low = history(glucose_readings=[glucose("g", 0, 7, 2.5)])
    hypertension, diabetes = profile("I10"), profile("E11")
    assert [d.rule_id for d in evaluate_stream(hypertension, bp_crisis)] == [
        "bp.hypertensive_crisis"
    ]
    # Type 2 diabetes controls blood pressure too (order 168n): crises are alerted there as well.
    assert [d.programme for d in evaluate_stream(diabetes, bp_crisis)] == ["diabetes_type_2"]
    assert evaluate_stream(hypertension, low) == []
    assert evaluate_stream(profile("J44"), bp_crisis) == []


def test_crisis_times_are_the_patients_local_time():
    [d] = evaluate_stream(profile("I10"), history(bp_readings=[bp("c", 0, 7, 190, 110)]))
    assert "at 2026-10-01 07:00 MSK" in d.explanation


def test_stream_lookback_is_the_widest_confirmation_window():
    assert stream_lookback(profile("I10")) == timedelta(minutes=30)
    assert stream_lookback(profile("J44")) == timedelta(0)
