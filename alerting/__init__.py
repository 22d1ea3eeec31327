"""Pure alert logic: readings and profiles in, decisions out. No I/O here (no MQTT, no SQL).

Entry points:

- streaming, on every stored reading: ``evaluate_stream`` (thresholds with confirmation:
  hypertensive crisis, level-2 hypoglycaemia), with ``stream_lookback``;
- batch, on a schedule, vectorised over a cohort: ``evaluate_batch`` on columns
  (``BloodPressureColumns``, ``GlucoseColumns``, ``DeviceColumns``), or ``evaluate_patient``
  for one patient's observations;
- the lifecycle of an alert, pure transitions over ``AlertState``: ``raise_or_update``,
  ``acknowledge``, ``resolve``, ``add_note``, ``snooze``, ``observe_condition``,
  ``auto_resolve``, ``escalate``, ``plan_notification``, ``mark_notified``, ``tick``;
- quality marks for one patient's readings: ``assess_blood_pressure``, ``assess_glucose``.

Streaming threshold rules: ``crisis.py``, ``hypoglycaemia.py``; batch rules: ``rules/``; rule
sets (versioned TOML per dispensary programme): ``rulesets/``; programmes and per-patient
parameters: ``profiles.py``, ``programmes.py``. ``evaluate_blood_pressure`` and ``merge`` are
the first API (the hypertension crisis rule alone), kept as they were.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta

from alerting.alert_state import (
    AlertState,
    AlertStatus,
    LifecyclePolicy,
    Note,
    NotificationPlan,
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
from alerting.batch import BatchResult, batch_lookback, evaluate_batch
from alerting.columns import BloodPressureColumns, DeviceColumns, GlucoseColumns
from alerting.crisis import RULE_ID as CRISIS_RULE_ID
from alerting.crisis import CrisisThresholds, evaluate_crisis
from alerting.decisions import AlertDecision, RuleState, Severity
from alerting.errors import (
    AlertingError,
    InputError,
    LifecycleError,
    ProfileError,
    RuleSetError,
)
from alerting.lifecycle import OpenAlert, merge
from alerting.observations import (
    BloodPressureObservation,
    DeviceStatus,
    GlucoseObservation,
    PatientHistory,
)
from alerting.patient import PatientEvaluation, evaluate_patient
from alerting.profiles import MeasurementSchedule, PatientProfile, Target
from alerting.programmes import RuleCatalogue
from alerting.quality import QualityNote, assess_blood_pressure, assess_glucose
from alerting.rulesets import RuleSet, load_ruleset, load_ruleset_file
from alerting.stream import evaluate_stream, stream_lookback

__all__ = [
    "AlertDecision",
    "AlertState",
    "AlertStatus",
    "AlertingError",
    "BatchResult",
    "BloodPressureColumns",
    "BloodPressureObservation",
    "DeviceColumns",
    "DeviceStatus",
    "GlucoseColumns",
    "GlucoseObservation",
    "InputError",
    "LifecycleError",
    "LifecyclePolicy",
    "MeasurementSchedule",
    "Note",
    "NotificationPlan",
    "OpenAlert",
    "PatientEvaluation",
    "PatientHistory",
    "PatientProfile",
    "ProfileError",
    "QualityNote",
    "RuleCatalogue",
    "RuleSet",
    "RuleSetError",
    "RuleState",
    "Severity",
    "Target",
    "acknowledge",
    "add_note",
    "assess_blood_pressure",
    "assess_glucose",
    "auto_resolve",
    "batch_lookback",
    "blood_pressure_lookback",
    "escalate",
    "evaluate_batch",
    "evaluate_blood_pressure",
    "evaluate_patient",
    "evaluate_stream",
    "load_ruleset",
    "load_ruleset_file",
    "mark_notified",
    "merge",
    "observe_condition",
    "plan_notification",
    "raise_or_update",
    "resolve",
    "snooze",
    "stream_lookback",
    "tick",
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
    elsewhere in the window) never counts as another occurrence. (``evaluate_stream`` is the
    same for every programme and metric, with the patient's profile.)
    """
    ruleset = ruleset or load_ruleset("hypertension")
    decisions = [
        evaluate_crisis(
            observations,
            CrisisThresholds.from_ruleset(ruleset),
            ruleset.rule_version(CRISIS_RULE_ID),
            programme=ruleset.programme,
        )
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
