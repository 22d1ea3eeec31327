"""Pure alert logic: readings and profiles in, decisions out. No I/O here (no MQTT, no SQL)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta

from alerting.crisis import CrisisThresholds, evaluate_crisis
from alerting.decisions import AlertDecision, Severity
from alerting.lifecycle import OpenAlert, merge
from alerting.observations import BloodPressureObservation
from alerting.rulesets import RuleSet, load_ruleset

__all__ = [
    "AlertDecision",
    "BloodPressureObservation",
    "OpenAlert",
    "Severity",
    "blood_pressure_lookback",
    "evaluate_blood_pressure",
    "merge",
]


def blood_pressure_lookback(ruleset: RuleSet | None = None) -> timedelta:
    """How much history before a new reading the blood-pressure rules need to see."""
    ruleset = ruleset or load_ruleset("hypertension")
    return CrisisThresholds.from_ruleset(ruleset).confirm_window


def evaluate_blood_pressure(
    observations: Sequence[BloodPressureObservation],
    *,
    new_reading_ids: Collection[str] | None = None,
    ruleset: RuleSet | None = None,
) -> list[AlertDecision]:
    """Run the blood-pressure rules of ``ruleset`` (default: the hypertension programme).

    ``observations`` is the patient's history around the new readings; ``new_reading_ids`` are
    the readings just arrived (None: all of them). A rule fires only on evidence that includes a
    new reading, so that re-evaluating old evidence (a later normal reading, a late reading
    elsewhere in the window) never counts as another occurrence.
    """
    ruleset = ruleset or load_ruleset("hypertension")
    decisions = [
        evaluate_crisis(observations, CrisisThresholds.from_ruleset(ruleset), ruleset.version)
    ]
    return [
        d
        for d in decisions
        if d is not None
        and (
            new_reading_ids is None
            or not set(d.evidence["reading_ids"]).isdisjoint(new_reading_ids)
        )
    ]
