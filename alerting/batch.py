"""Batch evaluation: the window rules over many patients at once, vectorised with numpy.

Averages over the protocol window, trends against the patient's own baseline, glucose
variability and hypo frequency, adherence and device health run on a schedule (once a day is
enough), not on every reading. Everything here works on columns (``alerting.columns``): one
pass of quality marks, local days and per-patient parameters for the whole cohort, then each
rule as array arithmetic over patients; Python objects are built only for the few patients a
rule fires for. The per-patient entry point (``evaluate_patient``) runs the same code with a
cohort of one, so the backtest and the ingest server can never disagree with the batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import numpy as np

from alerting.columns import (
    BloodPressureColumns,
    DeviceColumns,
    GlucoseColumns,
    sort_by_patient_and_time,
)
from alerting.decisions import AlertDecision, RuleState
from alerting.errors import InputError
from alerting.localtime import DAY, local_day_and_hour, offset_at, utc_offsets
from alerting.profiles import PatientProfile
from alerting.programmes import PatientRules, ResolvedRule, RuleCatalogue
from alerting.quality import (
    EXCLUDED,
    NOT_FOR_STATISTICS,
    BloodPressureQuality,
    GlucoseQuality,
    blood_pressure_quality,
    glucose_for_thresholds,
    glucose_quality,
)

C = TypeVar("C", BloodPressureColumns, GlucoseColumns)


class ParameterTable:
    """Per-patient rule parameters as arrays. Patients with the same programmes, targets and
    schedule share one resolution, so a cohort of 100,000 resolves a handful of groups."""

    def __init__(self, profiles: Sequence[PatientProfile], catalogue: RuleCatalogue) -> None:
        index: dict[tuple[object, ...], int] = {}
        self.groups: list[PatientRules] = []
        self.group_of = np.empty(len(profiles), np.intp)
        for i, profile in enumerate(profiles):
            key = profile.key()
            group = index.get(key)
            if group is None:
                group = index[key] = len(self.groups)
                self.groups.append(catalogue.resolve(profile))
            self.group_of[i] = group
        self._cache: dict[tuple[str, ...], np.ndarray] = {}

    def applies(self, rule_id: str) -> np.ndarray:
        return self._per_patient(("applies", rule_id), lambda g: rule_id in g.rules, bool)

    def param(self, rule_id: str, name: str) -> np.ndarray:
        """The parameter per patient (NaN where the rule does not apply)."""

        def value(g: PatientRules) -> float:
            rule = g.rules.get(rule_id)
            return np.nan if rule is None else float(rule.params.get(name, np.nan))

        return self._per_patient(("param", rule_id, name), value, float)

    def schedule(self, metric: str) -> np.ndarray:
        return self._per_patient(("schedule", metric), lambda g: g.schedule.get(metric, 0.0), float)

    def rule(self, patient: int, rule_id: str) -> ResolvedRule:
        return self.groups[self.group_of[patient]].rules[rule_id]

    def _per_patient(
        self, key: tuple[str, ...], value: Callable[[PatientRules], object], dtype: type
    ) -> np.ndarray:
        cached = self._cache.get(key)
        if cached is None:
            per_group = np.array([value(g) for g in self.groups], dtype=dtype)
            cached = self._cache[key] = per_group[self.group_of]
        return cached


@dataclass(frozen=True, eq=False)
class PreparedBloodPressure:
    """Blood-pressure columns sorted by patient and time (up to ``at``), with their marks, the
    patient-local day (0 = the local day of ``at``, -1 the day before) and hour."""

    cols: BloodPressureColumns
    quality: BloodPressureQuality
    day: np.ndarray
    hour: np.ndarray
    #: Rows of patient p are starts[p]:starts[p + 1].
    starts: np.ndarray

    @functools.cached_property
    def for_statistics(self) -> np.ndarray:
        return (self.quality.marks & np.uint32(NOT_FOR_STATISTICS)) == 0

    @functools.cached_property
    def for_thresholds(self) -> np.ndarray:
        return (self.quality.marks & np.uint32(EXCLUDED)) == 0


@dataclass(frozen=True, eq=False)
class PreparedGlucose:
    cols: GlucoseColumns
    quality: GlucoseQuality
    day: np.ndarray
    hour: np.ndarray
    starts: np.ndarray

    @functools.cached_property
    def for_statistics(self) -> np.ndarray:
        return (self.quality.marks & np.uint32(NOT_FOR_STATISTICS)) == 0

    @functools.cached_property
    def threshold_value(self) -> np.ndarray:
        """mmol/L as the hypo rules count it: LO = 0, HI = inf, excluded = NaN."""
        return glucose_for_thresholds(self.cols, self.quality.marks)


class BatchContext:
    """Everything the batch rules share for one evaluation at ``at``."""

    def __init__(
        self,
        profiles: Sequence[PatientProfile],
        at: datetime,
        catalogue: RuleCatalogue,
        blood_pressure: BloodPressureColumns | None,
        glucose: GlucoseColumns | None,
        devices: DeviceColumns | None,
    ) -> None:
        if at.tzinfo is None:
            raise InputError("the evaluation time must be time-zone aware")
        self.profiles = profiles
        self.n = len(profiles)
        self.at_datetime = at
        self.at = at.timestamp()
        self.params = ParameterTable(profiles, catalogue)
        zone_names = sorted({p.timezone for p in profiles})
        self.zones = [ZoneInfo(z) for z in zone_names]
        position = {z: i for i, z in enumerate(zone_names)}
        self.zone_of_patient = np.array([position[p.timezone] for p in profiles], np.intp)
        # A batch run at local midnight closes the day that just ended: "today" is the local
        # day of the last second before ``at``.
        last = self.at - 1
        zone_day = np.array(
            [np.floor((last + offset_at(last, z)) / DAY) for z in self.zones], np.int64
        )
        #: The local day number of ``at`` (of the day a midnight ``at`` ends) for each patient.
        self.at_day = zone_day[self.zone_of_patient] if self.n else np.zeros(0, np.int64)
        #: Statistics the rules computed, per patient, for ``BatchResult.statistics``.
        self.statistics: dict[str, np.ndarray] = {}
        self.bp = None if blood_pressure is None else self._prepare_bp(blood_pressure)
        self.glucose = None if glucose is None else self._prepare_glucose(glucose)
        self.devices = devices
        if devices is not None and len(devices) and devices.patient.max() >= self.n:
            raise InputError(f"device columns name patient {devices.patient.max()}, of {self.n}")

    def _clip(self, cols: C) -> tuple[C, np.ndarray, np.ndarray, np.ndarray]:
        """Sorted, without readings after ``at``, with local days, hours and patient starts."""
        if len(cols) and cols.patient.max() >= self.n:
            raise InputError(f"columns name patient {cols.patient.max()}, of {self.n}")
        cols = sort_by_patient_and_time(cols)
        if (cols.time > self.at).any():
            cols = cols.take(np.flatnonzero(cols.time <= self.at))
        offsets = utc_offsets(cols.time, cols.patient, self.zone_of_patient, self.zones)
        day, hour = local_day_and_hour(cols.time, offsets)
        day -= self.at_day[cols.patient]
        np.minimum(day, 0, out=day)  # a reading at exactly a midnight ``at`` closes that day
        starts = np.searchsorted(cols.patient, np.arange(self.n + 1))
        return cols, day, hour, starts

    def _prepare_bp(self, cols: BloodPressureColumns) -> PreparedBloodPressure:
        cols, day, hour, starts = self._clip(cols)
        return PreparedBloodPressure(cols, blood_pressure_quality(cols), day, hour, starts)

    def _prepare_glucose(self, cols: GlucoseColumns) -> PreparedGlucose:
        cols, day, hour, starts = self._clip(cols)
        return PreparedGlucose(cols, glucose_quality(cols), day, hour, starts)

    def zone(self, patient: int) -> ZoneInfo:
        return self.zones[self.zone_of_patient[patient]]

    def local(self, patient: int, epoch: float) -> datetime:
        return datetime.fromtimestamp(float(epoch), UTC).astimezone(self.zone(patient))

    def local_date(self, patient: int, day: int) -> date:
        """The patient's calendar date of relative local day ``day`` (0: the day of ``at``)."""
        return self.local(patient, self.at - 1).date() + timedelta(days=int(day))


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(float(epoch), UTC)


@dataclass(frozen=True, eq=False)
class RuleOutcome:
    """One rule over all patients: its state per patient and how to explain a firing."""

    state: np.ndarray  # int8 RuleState per patient
    decide: Callable[[int], AlertDecision]
    #: When the condition became clear, where the rule knows (epoch seconds, NaN otherwise);
    #: for the rest, the lifecycle counts from the evaluation that first saw it clear.
    clear_since: np.ndarray | None = None


#: A batch rule: the context in, an outcome per rule id out (one function may serve several
#: rules that share their preparation).
BatchRule = Callable[[BatchContext], dict[str, RuleOutcome]]


@dataclass(frozen=True, eq=False)
class BatchResult:
    """States for every rule and patient; decisions built when asked for (explanations are
    text: only the patients a rule fired for pay for them)."""

    at: datetime
    patient_ids: tuple[str, ...]
    #: RuleState codes per patient, by rule id.
    states: dict[str, np.ndarray]
    #: Epoch seconds per patient (NaN: not known), by rule id.
    clear_since: dict[str, np.ndarray]
    #: Statistics per patient (e.g. ``home_systolic_mean``), NaN where not computed.
    statistics: dict[str, np.ndarray]
    outcomes: dict[str, RuleOutcome]

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.patient_ids)}

    @functools.cached_property
    def decisions(self) -> dict[str, list[AlertDecision]]:
        """Decisions per patient id, for the patients with at least one."""
        out: dict[str, list[AlertDecision]] = {}
        for rule_id, outcome in self.outcomes.items():
            for i in np.flatnonzero(self.states[rule_id] == RuleState.FIRED):
                out.setdefault(self.patient_ids[i], []).append(outcome.decide(int(i)))
        return out

    def decisions_for(self, patient_id: str) -> list[AlertDecision]:
        i = self._index[patient_id]
        return [
            outcome.decide(i)
            for rule_id, outcome in self.outcomes.items()
            if self.states[rule_id][i] == RuleState.FIRED
        ]

    def fired(self, rule_id: str) -> list[str]:
        """The patients ``rule_id`` fired for."""
        states = self.states.get(rule_id)
        if states is None:
            return []
        return [self.patient_ids[i] for i in np.flatnonzero(states == RuleState.FIRED)]

    def state(self, patient_id: str, rule_id: str) -> RuleState:
        states = self.states.get(rule_id)
        if states is None:
            return RuleState.NOT_APPLICABLE
        return RuleState(int(states[self._index[patient_id]]))

    def condition_clear_since(self, patient_id: str, rule_id: str) -> datetime | None:
        """When the rule's condition became clear for the patient, if the rule knows; None also
        when it is not clear (see ``state``)."""
        values = self.clear_since.get(rule_id)
        if values is None or self.state(patient_id, rule_id) is not RuleState.CLEAR:
            return None
        value = values[self._index[patient_id]]
        return None if np.isnan(value) else utc(value)


def evaluate_batch(
    profiles: Sequence[PatientProfile],
    *,
    at: datetime,
    blood_pressure: BloodPressureColumns | None = None,
    glucose: GlucoseColumns | None = None,
    devices: DeviceColumns | None = None,
    catalogue: RuleCatalogue | None = None,
) -> BatchResult:
    """Run every batch rule for ``profiles`` at ``at`` (readings after ``at`` are ignored).

    ``patient`` in the columns is the position in ``profiles``. Windows are measured back from
    ``at``; days and parts of the day are the patient's local ones. Run it once a day per
    cohort, e.g. after the evening readings (a run at local midnight closes the day that just
    ended). Columns left out (None) mean "not known", not "no readings": pass empty columns for
    a cohort without readings of a kind. Rows sorted by patient, then time (``ORDER BY
    patient, measured_at``) skip a sort; ``batch_lookback()`` is the history the rules read.
    """
    from alerting.rules import BATCH_RULES  # the rules import this module's types

    catalogue = catalogue or RuleCatalogue.packaged()
    ctx = BatchContext(profiles, at, catalogue, blood_pressure, glucose, devices)
    states: dict[str, np.ndarray] = {}
    clear: dict[str, np.ndarray] = {}
    outcomes: dict[str, RuleOutcome] = {}
    for rule_ids, rule in BATCH_RULES:
        if not any(ctx.params.applies(r).any() for r in rule_ids):
            continue
        for rule_id, outcome in rule(ctx).items():
            state = np.where(ctx.params.applies(rule_id), outcome.state, RuleState.NOT_APPLICABLE)
            states[rule_id] = state.astype(np.int8)
            outcomes[rule_id] = outcome
            if outcome.clear_since is not None:
                clear[rule_id] = outcome.clear_since
    return BatchResult(
        at=at,
        patient_ids=tuple(p.patient_id for p in profiles),
        states=states,
        clear_since=clear,
        statistics=ctx.statistics,
        outcomes=outcomes,
    )


def batch_lookback(catalogue: RuleCatalogue | None = None) -> timedelta:
    """How much history before the evaluation time the batch rules read (the longest window of
    any rule in force, trend baseline included): what the ingest server loads per patient."""
    days = 0.0
    for ruleset in (catalogue or RuleCatalogue.packaged()).rulesets:
        for params in ruleset.rules.values():
            days = max(
                days,
                float(params.get("window_days", 0)),
                float(params.get("baseline_days", 0)) + float(params.get("monitor_days", 0)),
            )
    return timedelta(days=days + 1)  # the oldest local day is partial
