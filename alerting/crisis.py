"""Hypertensive crisis: a home reading above 180 and/or 120 mmHg.

One such reading is worth a clinician's attention today (HIGH); a re-measurement a few minutes
later that is still in crisis confirms it (URGENT). Implausible and failed readings never count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta, tzinfo
from typing import Any

from alerting.decisions import AlertDecision, Severity
from alerting.observations import BloodPressureObservation
from alerting.plausibility import blood_pressure_problem
from alerting.rulesets import RuleSet

RULE_ID = "bp.hypertensive_crisis"


@dataclass(frozen=True, slots=True)
class CrisisThresholds:
    systolic_above: float
    diastolic_above: float
    confirm_min_gap: timedelta
    confirm_window: timedelta

    @classmethod
    def from_ruleset(cls, ruleset: RuleSet) -> CrisisThresholds:
        return cls.from_parameters(ruleset.parameters(RULE_ID))

    @classmethod
    def from_parameters(cls, p: Mapping[str, Any]) -> CrisisThresholds:
        return cls(
            systolic_above=float(p["systolic_above"]),
            diastolic_above=float(p["diastolic_above"]),
            confirm_min_gap=timedelta(minutes=float(p["confirm_min_gap_minutes"])),
            confirm_window=timedelta(minutes=float(p["confirm_window_minutes"])),
        )

    def is_crisis(self, obs: BloodPressureObservation) -> bool:
        assert obs.systolic is not None and obs.diastolic is not None
        return obs.systolic > self.systolic_above or obs.diastolic > self.diastolic_above


def evaluate_crisis(
    observations: Sequence[BloodPressureObservation],
    thresholds: CrisisThresholds,
    rule_version: int,
    *,
    tz: tzinfo = UTC,
    programme: str | None = None,
) -> AlertDecision | None:
    """Decide on the latest crisis episode among ``observations`` (any order), or None.

    The caller passes at least ``thresholds.confirm_window`` of history before the newest reading,
    so that a re-measurement is seen together with the reading it confirms. Times in the
    explanation are in ``tz`` (the patient's zone).
    """
    usable = sorted(
        (o for o in observations if blood_pressure_problem(o) is None),
        key=lambda o: o.measured_at,
    )
    crises = [o for o in usable if thresholds.is_crisis(o)]
    if not crises:
        return None
    latest = crises[-1]
    episode = [o for o in crises if latest.measured_at - o.measured_at <= thresholds.confirm_window]
    confirmed = latest.measured_at - episode[0].measured_at >= thresholds.confirm_min_gap
    after = [
        o for o in usable if o.measured_at > latest.measured_at and not thresholds.is_crisis(o)
    ]

    worst_sys = max(o.systolic for o in episode if o.systolic is not None)
    worst_dia = max(o.diastolic for o in episode if o.diastolic is not None)
    flagged = sorted({f for o in episode for f in o.flags})
    return AlertDecision(
        rule_id=RULE_ID,
        rule_version=rule_version,
        severity=Severity.URGENT if confirmed else Severity.HIGH,
        title="Hypertensive crisis confirmed" if confirmed else "Blood pressure in crisis range",
        explanation=_explain(episode, thresholds, confirmed, after, flagged, tz),
        evidence={
            "reading_ids": [o.reading_id for o in episode],
            "statistics": {
                "crisis_readings": len(episode),
                "max_systolic_mmhg": worst_sys,
                "max_diastolic_mmhg": worst_dia,
                "confirmed": confirmed,
                "first_at": episode[0].measured_at.isoformat(),
                "last_at": latest.measured_at.isoformat(),
                "threshold": f">{thresholds.systolic_above:g} and/or "
                f">{thresholds.diastolic_above:g}",
                "quality_flags": flagged,
                "later_non_crisis_reading_ids": [o.reading_id for o in after],
            },
        },
        observed_at=latest.measured_at,
        started_at=episode[0].measured_at,
        programme=programme,
    )


def _explain(
    episode: list[BloodPressureObservation],
    t: CrisisThresholds,
    confirmed: bool,
    after: list[BloodPressureObservation],
    flagged: list[str],
    tz: tzinfo,
) -> str:
    first, last = episode[0], episode[-1]
    local = first.measured_at.astimezone(tz)
    text = (
        f"Home blood pressure {_bp(first)} at {local:%Y-%m-%d %H:%M} {local.tzname()} is above the "
        f"hypertensive-crisis threshold (>{t.systolic_above:g} and/or >{t.diastolic_above:g} mmHg)."
    )
    if confirmed:
        minutes = (last.measured_at - first.measured_at).total_seconds() / 60
        text += (
            f" Confirmed by a re-measurement {minutes:.0f} min later ({_bp(last)}):"
            " contact the patient now."
        )
    else:
        text += (
            " Not yet confirmed by a re-measurement:"
            " ask the patient to re-measure after 5 min of rest."
        )
    if after:
        text += f" A later reading was below the threshold ({_bp(after[-1])})."
    if flagged:
        text += f" Device quality marks: {', '.join(flagged)}."
    if any(o.time_source == "received" for o in episode):
        text += " Times are the gateway's receive times (the cuff's clock was not usable)."
    return text


def _bp(o: BloodPressureObservation) -> str:
    return f"{o.systolic:g}/{o.diastolic:g} mmHg"
