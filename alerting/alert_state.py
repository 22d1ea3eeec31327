"""The lifecycle of an alert, as pure transitions over a state record the ingest server stores.

open -> acknowledged -> resolved, with notes; snooze until a time (the alert comes back, as a
reminder, when the snooze ends); auto-resolve once the rule's condition has been clear for the
rule's ``auto_resolve_after_hours``; escalation of an urgent alert nobody acknowledged; quiet
hours that defer non-urgent notifications (urgent ones go out at once). Alarm fatigue is the
failure mode of remote monitoring (RULES.md): each transition here exists to send fewer, better
notifications, and none of them ever hides an urgent alert from a clinician:

- an urgent alert cannot be snoozed before it is acknowledged, and never resolves itself while
  unacknowledged;
- an alert that gets worse (HIGH -> URGENT) re-opens, drops its snooze and notifies again;
- evidence a clinician already resolved does not raise the alert again (a weekly mean still
  containing the readings they reviewed), unless it is now worse.

Every function returns a new state (the record is immutable) or raises ``LifecycleError`` for a
transition the state does not allow. Times are aware datetimes; notes are kept in order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from alerting.decisions import AlertDecision, RuleState, Severity
from alerting.errors import LifecycleError
from alerting.lifecycle import OpenAlert, merge

#: The author of the notes the lifecycle writes itself.
SYSTEM = "system"


class AlertStatus(StrEnum):
    """As stored (``alerts.status``)."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Note:
    at: datetime
    author: str
    text: str


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    """The care team's notification policy (organisational, not clinical: not in rule sets)."""

    #: An urgent alert unacknowledged this long escalates (e.g. to the duty physician) ...
    escalate_after: timedelta = timedelta(minutes=15)
    #: ... and again every this long, up to ``max_escalations`` times.
    escalate_every: timedelta = timedelta(minutes=15)
    max_escalations: int = 3
    #: Local quiet hours (in the zone given to ``plan_notification``): non-urgent notifications
    #: wait for their end. Equal start and end: no quiet hours.
    quiet_start: time = time(22, 0)
    quiet_end: time = time(7, 0)

    def __post_init__(self) -> None:
        if self.escalate_every <= timedelta(0) or self.escalate_after < timedelta(0):
            raise LifecycleError("escalation times must be positive", action="policy", status="")
        if self.max_escalations < 0:
            raise LifecycleError("max_escalations must be >= 0", action="policy", status="")


@dataclass(frozen=True, slots=True)
class NotificationPlan:
    """A notification owed: send it at ``send_at`` (now or the end of quiet hours)."""

    send_at: datetime
    #: "new", "worse", "escalation" or "reminder" (a snooze ended).
    reason: str
    severity: Severity
    escalation_level: int
    deferred: bool  # held back by quiet hours


@dataclass(frozen=True, slots=True)
class AlertState:
    """One alert of one patient for one rule, with everything its lifecycle needs."""

    patient_id: str
    rule_id: str
    rule_version: int
    severity: Severity
    title: str
    explanation: str
    evidence: dict[str, Any]
    occurrences: int
    #: Times of the oldest and newest evidence.
    first_seen_at: datetime
    last_seen_at: datetime
    #: When the engine raised it (processing time).
    raised_at: datetime
    status: AlertStatus = AlertStatus.OPEN
    programme: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    snoozed_until: datetime | None = None
    notes: tuple[Note, ...] = ()
    #: When the escalation clock of an urgent, unacknowledged alert started.
    escalation_started_at: datetime | None = None
    escalation_level: int = 0
    notified_severity: Severity | None = None
    notified_escalation: int = 0
    notified_at: datetime | None = None
    #: A snooze ended at this time and its reminder has not been sent yet.
    reminder_due_at: datetime | None = None
    #: Since when the rule's condition has been clear (None: not clear, or not known).
    condition_clear_since: datetime | None = None

    def open_alert(self) -> OpenAlert:
        return OpenAlert(
            rule_id=self.rule_id,
            rule_version=self.rule_version,
            severity=self.severity,
            title=self.title,
            explanation=self.explanation,
            evidence=self.evidence,
            occurrences=self.occurrences,
            first_seen_at=self.first_seen_at,
            last_seen_at=self.last_seen_at,
        )

    def snoozed(self, now: datetime) -> bool:
        return self.snoozed_until is not None and now < self.snoozed_until


def raise_or_update(
    state: AlertState | None, decision: AlertDecision, *, patient_id: str, now: datetime
) -> AlertState:
    """The alert after a rule fired: a new alert, the open one updated (``merge``), or, for
    evidence a clinician already resolved and no worse, the resolved alert unchanged."""
    _aware(now, "now")
    if state is not None and state.rule_id != decision.rule_id:
        raise LifecycleError(
            f"a decision of {decision.rule_id!r} for an alert of {state.rule_id!r}",
            action="raise",
            status=state.status,
        )
    if state is None or state.status is AlertStatus.RESOLVED:
        if (
            state is not None
            and state.resolved_at is not None
            and decision.first_evidence_at <= state.resolved_at
            and decision.severity <= state.severity
        ):
            return state
        new = merge(None, decision)
        return AlertState(
            patient_id=patient_id,
            rule_id=new.rule_id,
            rule_version=new.rule_version,
            severity=new.severity,
            title=new.title,
            explanation=new.explanation,
            evidence=new.evidence,
            occurrences=1,
            first_seen_at=new.first_seen_at,
            last_seen_at=new.last_seen_at,
            raised_at=now,
            programme=decision.programme,
            escalation_started_at=now if new.severity is Severity.URGENT else None,
        )
    merged = merge(state.open_alert(), decision)
    changes: dict[str, Any] = {
        "rule_version": merged.rule_version,
        "severity": merged.severity,
        "title": merged.title,
        "explanation": merged.explanation,
        "evidence": merged.evidence,
        "occurrences": merged.occurrences,
        "first_seen_at": merged.first_seen_at,
        "last_seen_at": merged.last_seen_at,
        "condition_clear_since": None,
    }
    if merged.severity > state.severity:
        text = f"Severity rose from {state.severity.name} to {merged.severity.name}"
        if state.status is not AlertStatus.OPEN or state.snoozed_until is not None:
            text += ": re-opened"
        changes.update(
            status=AlertStatus.OPEN,
            snoozed_until=None,
            escalation_level=0,
            notified_escalation=0,
            escalation_started_at=now if merged.severity is Severity.URGENT else None,
            notes=(*state.notes, Note(now, SYSTEM, text + ".")),
        )
    return replace(state, **changes)


def acknowledge(state: AlertState, *, by: str, at: datetime, note: str | None = None) -> AlertState:
    """A clinician has seen the alert and takes it on (stops escalation)."""
    _check(state, "acknowledge", by, at, allowed=(AlertStatus.OPEN,))
    return replace(
        state,
        status=AlertStatus.ACKNOWLEDGED,
        acknowledged_at=at,
        acknowledged_by=by,
        notes=_with_note(state, at, by, note),
    )


def resolve(state: AlertState, *, by: str, at: datetime, note: str | None = None) -> AlertState:
    _check(state, "resolve", by, at, allowed=(AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED))
    return replace(
        state,
        status=AlertStatus.RESOLVED,
        resolved_at=at,
        resolved_by=by,
        snoozed_until=None,
        reminder_due_at=None,
        notes=_with_note(state, at, by, note),
    )


def add_note(state: AlertState, *, by: str, at: datetime, text: str) -> AlertState:
    """A note on the alert, in any state (a resolved alert can still be annotated)."""
    _check(state, "note", by, at, allowed=tuple(AlertStatus))
    if not text.strip():
        raise LifecycleError("a note needs text", action="note", status=state.status)
    return replace(state, notes=_with_note(state, at, by, text))


def snooze(
    state: AlertState, *, until: datetime, by: str, at: datetime, note: str | None = None
) -> AlertState:
    """No notifications until ``until``; then the alert comes back as a reminder (``tick``)."""
    _check(state, "snooze", by, at, allowed=(AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED))
    _aware(until, "until")
    if until <= at:
        raise LifecycleError("snooze until a later time", action="snooze", status=state.status)
    if state.severity is Severity.URGENT and state.status is AlertStatus.OPEN:
        raise LifecycleError(
            "acknowledge an urgent alert before snoozing it", action="snooze", status=state.status
        )
    text = f"Snoozed until {until:%Y-%m-%d %H:%M %Z}" + (f": {note}" if note else "")
    return replace(state, snoozed_until=until, notes=(*state.notes, Note(at, by, text)))


def observe_condition(
    state: AlertState, rule_state: RuleState, *, at: datetime, clear_since: datetime | None = None
) -> AlertState:
    """Record what an evaluation said about the rule's condition: CLEAR starts (or keeps) the
    all-clear clock, FIRED and HOLD stop it, no data leaves it as it was."""
    if state.status is AlertStatus.RESOLVED:
        return state
    if rule_state is RuleState.CLEAR:
        if state.condition_clear_since is not None:
            return state
        since = max(clear_since or at, state.last_seen_at)
        return replace(state, condition_clear_since=since)
    if rule_state in (RuleState.FIRED, RuleState.HOLD):
        return replace(state, condition_clear_since=None)
    return state


def auto_resolve(state: AlertState, *, now: datetime, clear_for: timedelta | None) -> AlertState:
    """Resolve the alert once its condition has been clear for ``clear_for`` (None: never);
    never an urgent alert nobody acknowledged."""
    since = state.condition_clear_since
    if (
        clear_for is None
        or since is None
        or state.status is AlertStatus.RESOLVED
        or (state.severity is Severity.URGENT and state.status is AlertStatus.OPEN)
        or now - since < clear_for
    ):
        return state
    note = Note(now, SYSTEM, f"Condition clear since {since:%Y-%m-%d %H:%M %Z}: resolved.")
    return replace(
        state,
        status=AlertStatus.RESOLVED,
        resolved_at=now,
        resolved_by=SYSTEM,
        snoozed_until=None,
        reminder_due_at=None,
        notes=(*state.notes, note),
    )


def escalate(state: AlertState, *, now: datetime, policy: LifecyclePolicy) -> AlertState:
    """Raise the escalation level of an urgent alert left unacknowledged: after
    ``escalate_after``, then every ``escalate_every``, up to ``max_escalations``."""
    started = state.escalation_started_at
    if (
        state.status is not AlertStatus.OPEN
        or state.severity is not Severity.URGENT
        or started is None
        or now - started < policy.escalate_after
    ):
        return state
    due = 1 + (now - started - policy.escalate_after) // policy.escalate_every
    level = min(int(due), policy.max_escalations)
    if level <= state.escalation_level:
        return state
    note = Note(
        now,
        SYSTEM,
        f"Unacknowledged for {(now - started).total_seconds() / 60:.0f} min:"
        f" escalation level {level}.",
    )
    return replace(state, escalation_level=level, notes=(*state.notes, note))


def plan_notification(
    state: AlertState, *, now: datetime, policy: LifecyclePolicy, tz: tzinfo
) -> NotificationPlan | None:
    """The notification the alert owes, if any, and when to send it: urgent ones now, others
    now or at the end of the quiet hours (local to ``tz``, the care team's zone)."""
    if state.status is AlertStatus.RESOLVED or state.snoozed(now):
        return None
    if state.notified_severity is None:
        reason = "new"
    elif state.severity > state.notified_severity:
        reason = "worse"
    elif state.escalation_level > state.notified_escalation:
        reason = "escalation"
    elif state.reminder_due_at is not None:
        reason = "reminder"
    else:
        return None
    if state.severity is Severity.URGENT or not _quiet(now, policy, tz):
        return NotificationPlan(now, reason, state.severity, state.escalation_level, False)
    return NotificationPlan(
        _quiet_end(now, policy, tz), reason, state.severity, state.escalation_level, True
    )


def mark_notified(state: AlertState, *, at: datetime) -> AlertState:
    return replace(
        state,
        notified_severity=state.severity,
        notified_escalation=state.escalation_level,
        notified_at=at,
        reminder_due_at=None,
    )


def tick(
    state: AlertState,
    *,
    now: datetime,
    policy: LifecyclePolicy,
    tz: tzinfo,
    clear_for: timedelta | None = None,
) -> tuple[AlertState, NotificationPlan | None]:
    """The periodic step for one alert: end an expired snooze (the alert re-opens, a reminder is
    owed), auto-resolve, escalate, then say which notification is owed."""
    _aware(now, "now")
    if (
        state.snoozed_until is not None
        and now >= state.snoozed_until
        and (state.status is not AlertStatus.RESOLVED)
    ):
        ended = state.snoozed_until
        state = replace(
            state,
            status=AlertStatus.OPEN,
            snoozed_until=None,
            reminder_due_at=ended,
            escalation_started_at=ended if state.severity is Severity.URGENT else None,
            escalation_level=0,
            notified_escalation=0,
            notes=(*state.notes, Note(ended, SYSTEM, "Snooze ended: re-opened.")),
        )
    state = auto_resolve(state, now=now, clear_for=clear_for)
    state = escalate(state, now=now, policy=policy)
    return state, plan_notification(state, now=now, policy=policy, tz=tz)


def _quiet(now: datetime, policy: LifecyclePolicy, tz: tzinfo) -> bool:
    t = now.astimezone(tz).time()
    start, end = policy.quiet_start, policy.quiet_end
    if start == end:
        return False
    return start <= t < end if start < end else (t >= start or t < end)


def _quiet_end(now: datetime, policy: LifecyclePolicy, tz: tzinfo) -> datetime:
    local = now.astimezone(tz)
    end = datetime.combine(local.date(), policy.quiet_end, tzinfo=tz)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), policy.quiet_end, tzinfo=tz)
    return end


def _check(
    state: AlertState, action: str, by: str, at: datetime, allowed: tuple[AlertStatus, ...]
) -> None:
    if state.status not in allowed:
        raise LifecycleError(
            f"cannot {action} an alert that is {state.status}", action=action, status=state.status
        )
    if not by.strip():
        raise LifecycleError(f"{action} needs who did it", action=action, status=state.status)
    _aware(at, "at")


def _with_note(state: AlertState, at: datetime, by: str, note: str | None) -> tuple[Note, ...]:
    return (*state.notes, Note(at, by, note)) if note else state.notes


def _aware(value: datetime, name: str) -> None:
    if value.tzinfo is None:
        raise LifecycleError(f"{name} must be time-zone aware", action="check", status="")
