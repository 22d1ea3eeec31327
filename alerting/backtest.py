"""Backtest: replay a history of readings through the rules, as they would have run.

How clinicians tune rules before switching them on: every reading goes through the streaming
rules in time order (as if it had just arrived), the batch rules run at the end of each of the
patient's local days, and the alerts go through the lifecycle (one open alert per patient and
rule, repeats counted, auto-resolve); no clinician actions are simulated, so nothing is
acknowledged, snoozed or escalated. The result is JSON-ready: per patient the summaries, the
quality marks, and every alert that would have been raised with its times. The input format is
in ``alerting.backtest_input``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from alerting.alert_state import (
    AlertState,
    AlertStatus,
    auto_resolve,
    observe_condition,
    raise_or_update,
)
from alerting.backtest_input import Observation, ReplayReading
from alerting.batch import batch_lookback
from alerting.decisions import AlertDecision, RuleState
from alerting.errors import InputError
from alerting.hypoglycaemia import counted_value
from alerting.observations import (
    BloodPressureObservation,
    GlucoseObservation,
    PatientHistory,
    device_statuses_from_readings,
)
from alerting.patient import evaluate_patient
from alerting.profiles import PatientProfile
from alerting.programmes import RuleCatalogue
from alerting.quality import assess_blood_pressure, assess_glucose
from alerting.stream import evaluate_stream, stream_lookback
from alerting.summaries.blood_pressure import home_bp_protocol_mean
from alerting.summaries.glucose import summarise_glucose
from alerting.text import number

DEFAULT_PATIENT = "patient"
#: Conditions of a patient the profile file does not describe, by the kinds of reading they have.
DEFAULT_CONDITIONS = {"blood_pressure": "I10", "glucose": "E11"}


def backtest(
    readings: Sequence[ReplayReading],
    profiles: Mapping[str, PatientProfile] | None = None,
    *,
    catalogue: RuleCatalogue | None = None,
) -> dict[str, Any]:
    """Replay ``readings`` (any order) per patient and report, JSON-ready."""
    catalogue = catalogue or RuleCatalogue.packaged()
    profiles = dict(profiles or {})
    fallback = next(iter(profiles)) if len(profiles) == 1 else DEFAULT_PATIENT
    by_patient: dict[str, list[ReplayReading]] = {}
    for r in readings:
        by_patient.setdefault(r.patient_id or fallback, []).append(r)
    seen = Counter(r.observation.reading_id for r in readings)
    repeated = sorted(rid for rid, c in seen.items() if c > 1)
    if repeated:
        raise InputError(f"reading ids used more than once: {', '.join(repeated[:5])}")
    patients = []
    for patient_id, rows in sorted(by_patient.items()):
        profile = profiles.get(patient_id)
        source = "profile file"
        if profile is None:
            kinds = {_kind(r.observation) for r in rows}
            profile = PatientProfile(
                patient_id, tuple(sorted(DEFAULT_CONDITIONS[k] for k in kinds))
            )
            source = "default (no profile given: conditions from the kinds of reading)"
        patients.append(_replay(profile, source, rows, catalogue))
    alerts = [a for p in patients for a in p["alerts"]]
    return {
        "rule_sets": [
            {"programme": rs.programme, "version": rs.version, "source": rs.source}
            for rs in catalogue.rulesets
        ],
        "totals": {
            "patients": len(patients),
            "readings": len(readings),
            "alerts": len(alerts),
            "alerts_by_rule": dict(sorted(Counter(a["rule_id"] for a in alerts).items())),
        },
        "patients": patients,
    }


def _replay(
    profile: PatientProfile, source: str, rows: list[ReplayReading], catalogue: RuleCatalogue
) -> dict[str, Any]:
    rows = sorted(rows, key=lambda r: (r.observation.measured_at, r.line))
    times = [r.observation.measured_at for r in rows]
    if profile.enrolled_at is None:  # the history starts with the monitoring, as far as we know
        profile = replace(profile, enrolled_at=times[0])
    replay = _Replay(profile, catalogue)
    lookback, batch_window, tz = (
        stream_lookback(profile, catalogue),
        batch_lookback(catalogue),
        profile.tz,
    )
    first_day, last_day = times[0].astimezone(tz).date(), times[-1].astimezone(tz).date()
    day_ends = [
        datetime.combine(first_day + timedelta(days=k + 1), datetime.min.time(), tzinfo=tz)
        for k in range((last_day - first_day).days + 1)
    ]
    done = 0
    final_states: dict[str, str] = {}
    for at in day_ends:
        while done < len(rows) and times[done] <= at:  # each reading as it arrives
            start = bisect_left(times, times[done] - lookback, 0, done + 1)
            replay.reading(rows[start : done + 1], times[done])
            done += 1
        start = bisect_left(times, at - batch_window, 0, done)
        final_states = replay.day_end(rows[start:done], at)  # the nightly batch
    rules = catalogue.resolve(profile)
    return {
        "patient_id": profile.patient_id,
        "profile": {
            "source": source,
            "conditions": list(profile.conditions),
            "programmes": list(rules.programmes),
            "timezone": profile.timezone,
            "enrolled_at": _iso(profile.enrolled_at),
            "targets": {
                name: {"value": t.value, "set_by": t.set_by, "set_at": t.set_at.isoformat()}
                for name, t in profile.targets.items()
            },
            "unused_targets": list(rules.unused_targets),
            "schedule_per_week": dict(rules.schedule),
        },
        "period": {
            "first_reading_at": times[0].isoformat(),
            "last_reading_at": times[-1].isoformat(),
            "local_days": len(day_ends),
        },
        "readings": _reading_counts(rows),
        "summaries": _summaries(profile, rows),
        "alerts": replay.report(),
        "final_rule_states": final_states,
    }


class _Replay:
    """One patient's alerts through a replay: the lifecycle states and what happened to them."""

    def __init__(self, profile: PatientProfile, catalogue: RuleCatalogue) -> None:
        self.profile, self.catalogue = profile, catalogue
        self.rules = catalogue.resolve(profile).rules
        self.states: dict[str, AlertState] = {}
        self.finished: list[AlertState] = []
        self.events: dict[str, list[dict[str, Any]]] = {}

    def reading(self, window: Sequence[ReplayReading], now: datetime) -> None:
        """The streaming rules on the newest reading of ``window`` (the lookback before it)."""
        observations = [r.observation for r in window]
        history = PatientHistory(
            blood_pressure=[o for o in observations if isinstance(o, BloodPressureObservation)],
            glucose=[o for o in observations if isinstance(o, GlucoseObservation)],
        )
        new = {observations[-1].reading_id}
        for decision in evaluate_stream(self.profile, history, new, catalogue=self.catalogue):
            self._apply(decision, now)

    def day_end(self, window: Sequence[ReplayReading], at: datetime) -> dict[str, str]:
        """The batch rules at the end of a local day, then the all-clear and auto-resolve."""
        evaluation = evaluate_patient(
            self.profile, _history(window), at=at, catalogue=self.catalogue
        )
        for decision in evaluation.decisions:
            self._apply(decision, at)
        for rule_id, state in list(self.states.items()):
            if state.status is AlertStatus.RESOLVED:
                continue
            rule_state = evaluation.states.get(rule_id, RuleState.INSUFFICIENT_DATA)
            state = observe_condition(
                state, rule_state, at=at, clear_since=evaluation.clear_since.get(rule_id)
            )
            rule = self.rules.get(rule_id)
            resolved = auto_resolve(
                state, now=at, clear_for=None if rule is None else rule.auto_resolve_after
            )
            if resolved.status is AlertStatus.RESOLVED:
                self.events[_key(state)].append(
                    {
                        "at": at.isoformat(),
                        "event": "auto_resolved",
                        "condition_clear_since": _iso(state.condition_clear_since),
                    }
                )
            self.states[rule_id] = resolved
        return {rule: state.name.lower() for rule, state in evaluation.states.items()}

    def report(self) -> list[dict[str, Any]]:
        alerts = sorted(
            [*self.finished, *self.states.values()], key=lambda a: (a.raised_at, a.rule_id)
        )
        return [_alert(a, self.events.get(_key(a), [])) for a in alerts]

    def _apply(self, decision: AlertDecision, now: datetime) -> None:
        before = self.states.get(decision.rule_id)
        after = raise_or_update(before, decision, patient_id=self.profile.patient_id, now=now)
        if after is before:
            return
        fresh = before is None or before.status is AlertStatus.RESOLVED
        if before is not None and fresh:
            self.finished.append(before)
        if fresh:
            self.events[_key(after)] = []
        self.events[_key(after)].append(
            {
                "at": now.isoformat(),
                "event": "raised" if fresh else "updated",
                "severity": after.severity.name.lower(),
                "reading_ids": list(decision.evidence.get("reading_ids", []))[-8:],
            }
        )
        self.states[decision.rule_id] = after


def _history(rows: Sequence[ReplayReading]) -> PatientHistory:
    bp = [r.observation for r in rows if isinstance(r.observation, BloodPressureObservation)]
    glucose = [r.observation for r in rows if isinstance(r.observation, GlucoseObservation)]
    history = PatientHistory(blood_pressure=bp, glucose=glucose)
    devices = device_statuses_from_readings(history)
    battery: dict[str, float] = {}
    for r in rows:  # in time order: the latest level wins
        if r.battery_percent is not None and r.observation.device_key is not None:
            battery[r.observation.device_key] = r.battery_percent
    devices = [replace(d, battery_percent=battery.get(d.device_key)) for d in devices]
    return PatientHistory(blood_pressure=bp, glucose=glucose, devices=devices)


def _reading_counts(rows: Sequence[ReplayReading]) -> dict[str, Any]:
    history = _history(rows)
    notes = [*assess_blood_pressure(history.blood_pressure), *assess_glucose(history.glucose)]
    marks = Counter(m for n in notes for m in n.marks)
    return {
        "blood_pressure": len(history.blood_pressure),
        "glucose": len(history.glucose),
        "excluded_from_every_rule": sum(n.excluded for n in notes),
        "left_out_of_statistics": sum(n.not_for_statistics for n in notes),
        "marks": dict(sorted(marks.items())),
        "quality_notes": [
            {
                "reading_id": n.reading_id,
                "marks": list(n.marks),
                "excluded": n.excluded,
                "detail": n.detail,
            }
            for n in notes
            if n.detail or n.excluded or n.not_for_statistics
        ],
    }


def _summaries(profile: PatientProfile, rows: Sequence[ReplayReading]) -> dict[str, Any]:
    history = _history(rows)
    out: dict[str, Any] = {}
    if history.blood_pressure:
        end = max(o.measured_at for o in history.blood_pressure)
        mean = home_bp_protocol_mean(history.blood_pressure, end=end, tz=profile.tz)
        out["home_bp_protocol_mean_last_7_days"] = (
            None
            if mean is None
            else {
                "systolic_mmhg": number(mean.systolic),
                "diastolic_mmhg": number(mean.diastolic),
                "pulse_per_min": None if mean.pulse is None else number(mean.pulse),
                "morning_mmhg": [_n(mean.morning_systolic), _n(mean.morning_diastolic)],
                "evening_mmhg": [_n(mean.evening_systolic), _n(mean.evening_diastolic)],
                "readings": mean.readings,
                "days": mean.days,
                "discarded_day": None if mean.discarded_day is None else str(mean.discarded_day),
                "sufficient": mean.sufficient,
                "above_home_threshold_135_85": mean.above_threshold,
            }
        )
    if history.glucose:
        usable = [o for o in history.glucose if _glucose_counts(o)]
        end = max(o.measured_at for o in history.glucose)
        for name, since in (
            ("glucose_last_14_days", end - timedelta(days=14)),
            ("glucose_all", None),
        ):
            chosen = [o for o in usable if since is None or o.measured_at > since]
            summary = (
                summarise_glucose(
                    [o.measured_at for o in chosen],
                    [o.mmol_l for o in chosen],
                    [o.meal for o in chosen],
                )
                if chosen
                else None
            )
            out[name] = None if summary is None else _glucose_dict(summary)
        out["glucose_below_meter_range_readings"] = sum(
            counted_value(o) == 0.0 for o in history.glucose
        )
    return out


def _glucose_counts(o: GlucoseObservation) -> bool:
    return counted_value(o) not in (None, 0.0)


def _glucose_dict(s: Any) -> dict[str, Any]:
    return {
        "readings": s.readings,
        "mean_mmol_l": number(s.mean_mmol_l, 2),
        "mean_mg_dl": number(s.mean_mg_dl, 0),
        "sd_mmol_l": number(s.sd_mmol_l, 2),
        "cv_percent": number(s.cv_percent),
        "below_3_0_percent": number(s.below_level_2_percent),
        "3_0_to_3_9_percent": number(s.below_level_1_percent),
        "in_range_3_9_to_10_percent": number(s.in_range_percent),
        "10_to_13_9_percent": number(s.above_level_1_percent),
        "above_13_9_percent": number(s.above_level_2_percent),
        "shares_are_of": "readings (fingerstick), not time",
        "gmi_percent": number(s.gmi_percent, 2),
        "hypo_events": s.hypo_events,
        "hypo_level_2_events": s.hypo_level_2_events,
        "by_meal": {
            meal: {"readings": m.readings, "mean_mmol_l": number(m.mean_mmol_l, 2)}
            for meal, m in s.by_meal.items()
        },
    }


def _alert(a: AlertState, events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rule_id": a.rule_id,
        "rule_version": a.rule_version,
        "programme": a.programme,
        "severity": a.severity.name.lower(),
        "title": a.title,
        "raised_at": a.raised_at.isoformat(),
        "first_evidence_at": a.first_seen_at.isoformat(),
        "last_evidence_at": a.last_seen_at.isoformat(),
        "occurrences": a.occurrences,
        "status": str(a.status),
        "resolved_at": _iso(a.resolved_at),
        "explanation": a.explanation,
        "evidence": a.evidence,
        "history": events,
    }


def _key(a: AlertState) -> str:
    return f"{a.rule_id}@{a.raised_at.isoformat()}"


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _n(value: float | None) -> float | None:
    return None if value is None else number(value)


def _kind(o: Observation) -> str:
    return "blood_pressure" if isinstance(o, BloodPressureObservation) else "glucose"
