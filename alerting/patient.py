"""One patient's batch evaluation, for the backtest and for evaluating a patient on demand.

The same vectorised code as the cohort batch (``alerting.batch``), with a cohort of one: the
ingest server and the backtest cannot drift apart from the nightly batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from alerting.batch import evaluate_batch
from alerting.columns import BloodPressureColumns, DeviceColumns, GlucoseColumns
from alerting.decisions import AlertDecision, RuleState
from alerting.observations import PatientHistory
from alerting.profiles import PatientProfile
from alerting.programmes import RuleCatalogue


@dataclass(frozen=True, slots=True)
class PatientEvaluation:
    decisions: list[AlertDecision]
    #: Every rule of the patient's programmes that the batch evaluates.
    states: dict[str, RuleState]
    #: When each CLEAR rule's condition became clear, where the rule knows.
    clear_since: dict[str, datetime | None]
    #: Statistics the rules computed (None: not computed), e.g. ``home_systolic_mean``.
    statistics: dict[str, float | None]


def evaluate_patient(
    profile: PatientProfile,
    history: PatientHistory,
    *,
    at: datetime,
    catalogue: RuleCatalogue | None = None,
) -> PatientEvaluation:
    """The batch rules for one patient at ``at`` (readings after ``at`` are ignored)."""
    result = evaluate_batch(
        [profile],
        at=at,
        blood_pressure=BloodPressureColumns.from_observations([history.blood_pressure]),
        glucose=GlucoseColumns.from_observations([history.glucose]),
        devices=DeviceColumns.from_statuses([history.devices]),
        catalogue=catalogue,
    )
    pid = profile.patient_id
    states = {
        rule: result.state(pid, rule)
        for rule in result.states
        if result.state(pid, rule) is not RuleState.NOT_APPLICABLE
    }
    return PatientEvaluation(
        decisions=result.decisions_for(pid),
        states=states,
        clear_since={rule: result.condition_clear_since(pid, rule) for rule in states},
        statistics={
            name: None if np.isnan(values[0]) else float(values[0])
            for name, values in result.statistics.items()
        },
    )
