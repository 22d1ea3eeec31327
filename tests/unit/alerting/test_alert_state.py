"""The alert lifecycle: pure transitions over the state record the ingest server stores."""

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerting import (
    AlertDecision,
    AlertStatus,
    LifecycleError,
    LifecyclePolicy,
    RuleState,
    Severity,
    acknowledge,
    add_note,
    auto_resolve,
    escalate,
    mark_notified,
    observe_condition,
    plan_notification,
    raise_or_update,
    resolve,
    snooze,
    tick,
)

T0 = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # 19:00 in Moscow
MOSCOW = ZoneInfo("Europe/Moscow")
POLICY = LifecyclePolicy()
MIN = timedelta(minutes=1)


def decision(severity=Severity.HIGH, ids=("a",), at=T0, rule="bp.hypertensive_crisis"):
    return AlertDecision(
        rule_id=rule,
        rule_version=1,
        severity=severity,
        title=f"{severity.name} title",
        explanation=f"{severity.name} explanation",
        evidence={"reading_ids": list(ids), "statistics": {}},
        observed_at=at,
        programme="hypertension",
    )


def raised(severity=Severity.HIGH, now=T0):
    return raise_or_update(None, decision(severity, at=now), patient_id="p1", now=now)


def test_a_new_alert_is_open_and_owes_a_notification():
    state = raised()
    assert (state.status, state.occurrences, state.raised_at) == (AlertStatus.OPEN, 1, T0)
    assert state.programme == "hypertension" and state.escalation_started_at is None
    plan = plan_notification(state, now=T0, policy=POLICY, tz=MOSCOW)
    assert (plan.reason, plan.send_at, plan.deferred) == ("new", T0, False)
    assert plan_notification(mark_notified(state, at=T0), now=T0, policy=POLICY, tz=MOSCOW) is None


def test_repeats_update_the_one_open_alert():
    state = raised()
    state = raise_or_update(
        state, decision(ids=("b",), at=T0 + 60 * MIN), patient_id="p1", now=T0 + 60 * MIN
    )
    assert state.occurrences == 2 and state.evidence["reading_ids"] == ["a", "b"]
    assert state.last_seen_at == T0 + 60 * MIN


def test_getting_worse_re_opens_drops_the_snooze_and_notifies_again():
    state = acknowledge(raised(), by="Dr A", at=T0 + MIN)
    state = snooze(state, until=T0 + 600 * MIN, by="Dr A", at=T0 + 2 * MIN)
    state = mark_notified(state, at=T0)
    worse = raise_or_update(
        state,
        decision(Severity.URGENT, ("a", "b"), T0 + 5 * MIN),
        patient_id="p1",
        now=T0 + 5 * MIN,
    )
    assert worse.status is AlertStatus.OPEN and worse.snoozed_until is None
    assert worse.escalation_started_at == T0 + 5 * MIN
    assert worse.notes[-1].text == "Severity rose from HIGH to URGENT: re-opened."
    plan = plan_notification(worse, now=T0 + 5 * MIN, policy=POLICY, tz=MOSCOW)
    assert plan.reason == "worse" and plan.severity is Severity.URGENT


def test_evidence_a_clinician_resolved_does_not_raise_the_alert_again():
    state = resolve(raised(), by="Dr A", at=T0 + 10 * MIN, note="called, fine")
    same_episode = decision(ids=("a", "c"), at=T0 + 20 * MIN)
    same_episode = replace(same_episode, started_at=T0)
    assert raise_or_update(state, same_episode, patient_id="p1", now=T0 + 20 * MIN) is state
    new_episode = decision(ids=("d",), at=T0 + 120 * MIN)
    fresh = raise_or_update(state, new_episode, patient_id="p1", now=T0 + 120 * MIN)
    assert fresh.status is AlertStatus.OPEN and fresh.occurrences == 1 and fresh is not state
    worse_same = replace(same_episode, severity=Severity.URGENT)
    assert raise_or_update(state, worse_same, patient_id="p1", now=T0 + 20 * MIN).status is (
        AlertStatus.OPEN
    )


def test_acknowledge_resolve_and_notes():
    state = acknowledge(raised(), by="Dr A", at=T0 + MIN, note="calling")
    assert (state.status, state.acknowledged_by) == (AlertStatus.ACKNOWLEDGED, "Dr A")
    state = add_note(state, by="Nurse B", at=T0 + 3 * MIN, text="patient rested, 150/95")
    state = resolve(state, by="Dr A", at=T0 + 4 * MIN)
    assert state.status is AlertStatus.RESOLVED and state.resolved_by == "Dr A"
    assert [(n.author, n.text) for n in state.notes] == [
        ("Dr A", "calling"),
        ("Nurse B", "patient rested, 150/95"),
    ]
    assert add_note(state, by="Dr A", at=T0 + 9 * MIN, text="follow-up booked").notes[-1].text == (
        "follow-up booked"
    )


@pytest.mark.parametrize(
    ("transition", "message"),
    [
        (lambda s: acknowledge(acknowledge(s, by="A", at=T0), by="B", at=T0), "acknowledged"),
        (lambda s: resolve(resolve(s, by="A", at=T0), by="A", at=T0), "resolved"),
        (lambda s: acknowledge(resolve(s, by="A", at=T0), by="A", at=T0), "resolved"),
        (lambda s: snooze(s, until=T0 - MIN, by="A", at=T0), "later time"),
        (lambda s: acknowledge(s, by=" ", at=T0), "who did it"),
        (lambda s: acknowledge(s, by="A", at=T0.replace(tzinfo=None)), "time-zone aware"),
        (lambda s: add_note(s, by="A", at=T0, text=""), "needs text"),
    ],
    ids=[
        "ack-twice",
        "resolve-twice",
        "ack-resolved",
        "snooze-past",
        "anonymous",
        "naive",
        "empty-note",
    ],
)
def test_transitions_the_state_does_not_allow_are_errors(transition, message):
    with pytest.raises(LifecycleError, match=message):
        transition(raised())


def test_an_urgent_alert_cannot_be_snoozed_before_someone_acknowledges_it():
    urgent = raised(Severity.URGENT)
    with pytest.raises(LifecycleError, match="acknowledge an urgent alert before snoozing"):
        snooze(urgent, until=T0 + 60 * MIN, by="A", at=T0)
    snoozed = snooze(acknowledge(urgent, by="A", at=T0), until=T0 + 60 * MIN, by="A", at=T0)
    assert snoozed.snoozed_until == T0 + 60 * MIN


def test_a_snooze_silences_then_comes_back_as_a_reminder():
    state = mark_notified(acknowledge(raised(), by="A", at=T0), at=T0)
    state = snooze(state, until=T0 + 120 * MIN, by="A", at=T0 + MIN, note="review after lunch")
    assert state.notes[-1].text.startswith("Snoozed until 2026-11-20 18:00 UTC: review after")
    state, plan = tick(state, now=T0 + 60 * MIN, policy=POLICY, tz=UTC)
    assert plan is None and state.status is AlertStatus.ACKNOWLEDGED
    state, plan = tick(state, now=T0 + 121 * MIN, policy=POLICY, tz=UTC)
    assert state.status is AlertStatus.OPEN and state.snoozed_until is None
    assert plan.reason == "reminder"
    state = mark_notified(state, at=T0 + 121 * MIN)
    assert tick(state, now=T0 + 122 * MIN, policy=POLICY, tz=UTC)[1] is None


def test_unacknowledged_urgent_alerts_escalate_on_a_schedule_up_to_a_cap():
    state = mark_notified(raised(Severity.URGENT), at=T0)
    assert escalate(state, now=T0 + 14 * MIN, policy=POLICY).escalation_level == 0
    state = escalate(state, now=T0 + 15 * MIN, policy=POLICY)
    assert state.escalation_level == 1
    plan = plan_notification(state, now=T0 + 15 * MIN, policy=POLICY, tz=MOSCOW)
    assert (plan.reason, plan.escalation_level) == ("escalation", 1)
    assert escalate(state, now=T0 + 31 * MIN, policy=POLICY).escalation_level == 2
    assert escalate(state, now=T0 + 600 * MIN, policy=POLICY).escalation_level == 3  # the cap
    acknowledged = acknowledge(raised(Severity.URGENT), by="A", at=T0 + MIN)
    assert escalate(acknowledged, now=T0 + 60 * MIN, policy=POLICY).escalation_level == 0
    assert escalate(raised(Severity.HIGH), now=T0 + 60 * MIN, policy=POLICY).escalation_level == 0


@pytest.mark.parametrize(
    ("local_time", "severity", "deferred_to"),
    [
        (time(23, 30), Severity.WARNING, datetime(2026, 11, 21, 7, 0, tzinfo=MOSCOW)),
        (time(3, 0), Severity.WARNING, datetime(2026, 11, 21, 7, 0, tzinfo=MOSCOW)),
        (time(12, 0), Severity.WARNING, None),
        (time(23, 30), Severity.URGENT, None),
    ],
    ids=["late-evening", "night", "day", "urgent-at-night"],
)
def test_quiet_hours_defer_only_non_urgent_notifications(local_time, severity, deferred_to):
    day = datetime(2026, 11, 21 if local_time < time(7) else 20, tzinfo=MOSCOW).date()
    now = datetime.combine(day, local_time, tzinfo=MOSCOW).astimezone(UTC)
    plan = plan_notification(raised(severity, now), now=now, policy=POLICY, tz=MOSCOW)
    assert plan.deferred is (deferred_to is not None)
    assert plan.send_at == (deferred_to or now)


def test_quiet_hours_within_a_day_and_none():
    afternoon_nap = LifecyclePolicy(quiet_start=time(13), quiet_end=time(15))
    now = datetime(2026, 11, 20, 14, tzinfo=MOSCOW)
    plan = plan_notification(raised(now=now), now=now, policy=afternoon_nap, tz=MOSCOW)
    assert plan.send_at == datetime(2026, 11, 20, 15, tzinfo=MOSCOW)
    never = LifecyclePolicy(quiet_start=time(0), quiet_end=time(0))
    assert not plan_notification(raised(now=now), now=now, policy=never, tz=MOSCOW).deferred


def test_auto_resolve_once_clear_long_enough():
    state = raised()
    state = observe_condition(state, RuleState.CLEAR, at=T0 + 60 * MIN)
    assert state.condition_clear_since == T0 + 60 * MIN
    # Later all-clears keep the clock; no data leaves it; HOLD or FIRED stop it.
    assert observe_condition(state, RuleState.CLEAR, at=T0 + 90 * MIN) is state
    assert observe_condition(state, RuleState.INSUFFICIENT_DATA, at=T0 + 90 * MIN) is state
    assert observe_condition(state, RuleState.HOLD, at=T0 + 90 * MIN).condition_clear_since is None
    assert auto_resolve(state, now=T0 + 23 * 60 * MIN, clear_for=timedelta(days=1)) is state
    done = auto_resolve(state, now=T0 + 25 * 60 * MIN, clear_for=timedelta(days=1))
    assert (done.status, done.resolved_by) == (AlertStatus.RESOLVED, "system")
    assert done.notes[-1].text.startswith("Condition clear since 2026-11-20 17:00 UTC")
    assert auto_resolve(state, now=T0 + 999 * 60 * MIN, clear_for=None) is state


def test_the_all_clear_never_starts_before_the_last_evidence():
    state = raise_or_update(None, decision(at=T0 + 30 * MIN), patient_id="p1", now=T0 + 30 * MIN)
    state = observe_condition(state, RuleState.CLEAR, at=T0 + 60 * MIN, clear_since=T0)
    assert state.condition_clear_since == T0 + 30 * MIN
    state = raise_or_update(
        state, decision(ids=("z",), at=T0 + 70 * MIN), patient_id="p1", now=T0 + 70 * MIN
    )
    assert state.condition_clear_since is None  # fired again


def test_an_unacknowledged_urgent_alert_never_resolves_itself():
    state = observe_condition(raised(Severity.URGENT), RuleState.CLEAR, at=T0 + MIN)
    later = T0 + timedelta(days=10)
    assert auto_resolve(state, now=later, clear_for=timedelta(hours=1)).status is AlertStatus.OPEN
    state = acknowledge(state, by="A", at=T0 + 2 * MIN)
    assert auto_resolve(state, now=later, clear_for=timedelta(hours=1)).status is (
        AlertStatus.RESOLVED
    )


def test_a_decision_of_another_rule_is_an_error():
    with pytest.raises(LifecycleError, match=r"glucose\.hypo_level_2"):
        raise_or_update(raised(), decision(rule="glucose.hypo_level_2"), patient_id="p1", now=T0)
