from datetime import UTC, datetime, timedelta

import pytest

from alerting import BloodPressureObservation, Severity, evaluate_blood_pressure, merge
from alerting.rulesets import RuleSetError, load_ruleset

T0 = datetime(2026, 11, 20, 19, 0, tzinfo=UTC)


def obs(
    rid: str, minutes: float, sys: float | None, dia: float | None, flags=()
) -> BloodPressureObservation:
    return BloodPressureObservation(
        rid, T0 + timedelta(minutes=minutes), sys, dia, 70, frozenset(flags)
    )


@pytest.mark.parametrize(
    ("sys", "dia"),
    [(120, 80), (179, 119), (180, 120), (170, 110)],
    ids=["normal", "just-below", "at-threshold-is-not-above", "grade-2"],
)
def test_no_alert_without_crisis_values(sys, dia):
    assert evaluate_blood_pressure([obs("a", 0, sys, dia)]) == []


@pytest.mark.parametrize(("sys", "dia"), [(181, 90), (150, 121), (196, 124)])
def test_single_crisis_reading_is_high_and_names_the_reading(sys, dia):
    [decision] = evaluate_blood_pressure([obs("a", 0, 120, 80), obs("b", 10, sys, dia)])
    assert decision.rule_id == "bp.hypertensive_crisis"
    assert decision.rule_version == load_ruleset("hypertension").rule_version(decision.rule_id) == 1
    assert decision.severity is Severity.HIGH
    assert decision.evidence["reading_ids"] == ["b"]
    assert decision.evidence["statistics"]["confirmed"] is False
    assert decision.observed_at == T0 + timedelta(minutes=10)
    assert "re-measure" in decision.explanation


def test_remeasurement_five_minutes_later_confirms_as_urgent():
    [decision] = evaluate_blood_pressure([obs("a", 0, 196, 124), obs("b", 5, 190, 122)])
    assert decision.severity is Severity.URGENT
    assert decision.evidence["reading_ids"] == ["a", "b"]
    stats = decision.evidence["statistics"]
    assert stats["max_systolic_mmhg"] == 196 and stats["max_diastolic_mmhg"] == 124
    assert "Confirmed by a re-measurement 5 min later (190/122 mmHg)" in decision.explanation


def test_duplicate_press_is_not_a_confirmation():
    [decision] = evaluate_blood_pressure([obs("a", 0, 196, 124), obs("b", 1, 195, 124)])
    assert decision.severity is Severity.HIGH


def test_crisis_outside_the_window_does_not_confirm():
    [decision] = evaluate_blood_pressure([obs("a", 0, 196, 124), obs("b", 45, 190, 122)])
    assert decision.severity is Severity.HIGH
    assert decision.evidence["reading_ids"] == ["b"]


def test_later_normal_reading_is_reported():
    [decision] = evaluate_blood_pressure([obs("a", 0, 196, 124), obs("b", 5, 140, 88)])
    assert decision.severity is Severity.HIGH
    assert decision.evidence["statistics"]["later_non_crisis_reading_ids"] == ["b"]
    assert "later reading was below the threshold (140/88 mmHg)" in decision.explanation


@pytest.mark.parametrize(
    ("sys", "dia"),
    [(None, 124), (196, None), (320, 124), (196, 210), (190, 195), (40, 30)],
    ids=[
        "failed-sys",
        "failed-dia",
        "sys-above-300",
        "dia-above-200",
        "dia-not-below-sys",
        "sys-below-50",
    ],
)
def test_implausible_or_failed_readings_never_alert(sys, dia):
    assert evaluate_blood_pressure([obs("a", 0, sys, dia)]) == []


def test_quality_flags_are_named_in_the_alert():
    [decision] = evaluate_blood_pressure([obs("a", 0, 196, 124, flags=["body_movement"])])
    assert decision.evidence["statistics"]["quality_flags"] == ["body_movement"]
    assert "body_movement" in decision.explanation


def test_input_order_does_not_matter():
    readings = [obs("b", 5, 190, 122), obs("a", 0, 196, 124)]
    assert evaluate_blood_pressure(readings) == evaluate_blood_pressure(readings[::-1])


def test_merge_keeps_one_alert_that_only_gets_worse():
    [high] = evaluate_blood_pressure([obs("a", 0, 196, 124)])
    [urgent] = evaluate_blood_pressure([obs("a", 0, 196, 124), obs("b", 5, 190, 122)])
    [later_high] = evaluate_blood_pressure([obs("c", 120, 185, 100)])

    state = merge(None, high)
    assert (state.severity, state.occurrences, state.evidence["reading_ids"]) == (
        Severity.HIGH,
        1,
        ["a"],
    )
    state = merge(state, urgent)
    assert (state.severity, state.occurrences, state.evidence["reading_ids"]) == (
        Severity.URGENT,
        2,
        ["a", "b"],
    )
    state = merge(state, later_high)
    assert state.severity is Severity.URGENT  # never drops while open
    assert state.title == urgent.title
    assert state.evidence["reading_ids"] == ["a", "b", "c"]
    assert (state.first_seen_at, state.last_seen_at) == (T0, T0 + timedelta(minutes=120))


def test_unknown_programme_is_a_clear_error():
    with pytest.raises(RuleSetError, match="no-such-programme"):
        load_ruleset("no-such-programme")


def test_only_new_evidence_fires_the_rule():
    history = [obs("a", 0, 196, 124), obs("b", 10, 140, 88)]
    # A normal reading after a crisis is not another occurrence of the crisis.
    assert evaluate_blood_pressure(history, new_reading_ids={"b"}) == []
    # The crisis reading itself, arriving late (after the normal one), does fire.
    [decision] = evaluate_blood_pressure(history, new_reading_ids={"a"})
    assert decision.evidence["reading_ids"] == ["a"]
    # A confirming re-measurement is new evidence for the same episode.
    [confirmed] = evaluate_blood_pressure([*history, obs("c", 5, 190, 122)], new_reading_ids={"c"})
    assert confirmed.severity is Severity.URGENT and confirmed.evidence["reading_ids"] == ["a", "c"]


def test_evidence_stays_in_time_order_when_readings_arrive_out_of_order():
    # The confirming re-measurement is processed before the first crisis reading (two workers).
    [confirm_first] = evaluate_blood_pressure([obs("b", 5, 190, 122)])
    [both] = evaluate_blood_pressure([obs("a", 0, 196, 124), obs("b", 5, 190, 122)])
    state = merge(merge(None, confirm_first), both)
    assert state.evidence["reading_ids"] == ["a", "b"]
    assert state.severity is Severity.URGENT and state.first_seen_at == T0
