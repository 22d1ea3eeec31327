"""Streaming evaluation: the threshold rules with confirmation, on every stored reading.

The ingest server calls ``evaluate_stream`` with the patient's readings from
``stream_lookback(profile)`` before the earliest new reading to that long after the latest, and
the ids of the readings that just arrived. A rule fires only on evidence that includes a new
reading, so re-evaluating old evidence (a later normal reading, a late reading elsewhere in the
window) never counts as another occurrence. Milliseconds per reading: no numpy here.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from alerting.crisis import RULE_ID as CRISIS
from alerting.crisis import CrisisThresholds, evaluate_crisis
from alerting.decisions import AlertDecision
from alerting.hypoglycaemia import RULE_ID as HYPO
from alerting.hypoglycaemia import HypoThresholds, evaluate_hypo
from alerting.observations import PatientHistory
from alerting.profiles import PatientProfile
from alerting.programmes import RuleCatalogue


def stream_lookback(profile: PatientProfile, catalogue: RuleCatalogue | None = None) -> timedelta:
    """How much history either side of the new readings the streaming rules need."""
    rules = (catalogue or RuleCatalogue.packaged()).resolve(profile).rules
    windows = [
        timedelta(minutes=rules[r]["confirm_window_minutes"]) for r in (CRISIS, HYPO) if r in rules
    ]
    return max(windows, default=timedelta(0))


def evaluate_stream(
    profile: PatientProfile,
    history: PatientHistory,
    new_reading_ids: Collection[str] | None = None,
    *,
    catalogue: RuleCatalogue | None = None,
) -> list[AlertDecision]:
    """The streaming rules of the patient's programmes over ``history``; ``new_reading_ids``
    are the readings just arrived (None: all of them)."""
    rules = (catalogue or RuleCatalogue.packaged()).resolve(profile).rules
    decisions = []
    if CRISIS in rules and history.blood_pressure:
        rule = rules[CRISIS]
        decisions.append(
            evaluate_crisis(
                history.blood_pressure,
                CrisisThresholds.from_parameters(rule.params),
                rule.version,
                tz=profile.tz,
                programme=rule.programme,
            )
        )
    if HYPO in rules and history.glucose:
        rule = rules[HYPO]
        decisions.append(
            evaluate_hypo(
                history.glucose,
                HypoThresholds.from_parameters(rule.params),
                rule.version,
                tz=profile.tz,
                programme=rule.programme,
            )
        )
    return [d for d in decisions if d is not None and _is_new(d, new_reading_ids)]


def _is_new(decision: AlertDecision, new_reading_ids: Collection[str] | None) -> bool:
    return new_reading_ids is None or not set(decision.evidence["reading_ids"]).isdisjoint(
        new_reading_ids
    )
