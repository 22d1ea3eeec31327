"""Quality marks on every reading: visible, explainable, and never a silent drop.

Each reading gets a set of marks (``Mark``). Some exclude it from every rule (a failed or
implausible value, a duplicate, a control-solution test, a meter's sensor fault); some keep it
for the threshold rules but leave it out of averages, trends and variability (a Hampel spike,
the cuff's own complaints about movement, fit or position: a crisis reading taken while moving
is still worth a call, but it should not move a weekly mean); the rest are information (an
irregular pulse, which recurring is a finding of its own; a time stamp that is the gateway's
receive time, or one corrected for the device's clock).

Glucose gets no spike filter on purpose: a hypo between two normal readings looks exactly like
a spike, and it is the signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntFlag, auto

import numpy as np

from alerting.columns import (
    BP_FLAGS,
    GLUCOSE_STATUS,
    OTHER,
    BloodPressureColumns,
    GlucoseColumns,
    bit,
    sort_by_patient_and_time,
)
from alerting.filters import HampelResult, hampel_grouped
from alerting.observations import BloodPressureObservation, GlucoseObservation
from alerting.plausibility import (
    DIASTOLIC_RANGE,
    GLUCOSE_RANGE_MMOL_L,
    MG_DL_PER_MMOL_L,
    MMHG_PER_KPA,
    PULSE_RANGE,
    SYSTOLIC_RANGE,
    blood_pressure_problem,
    glucose_problem,
)


class Mark(IntFlag):
    FAILED = auto()  # no value (NaN / NRes / special value)
    IMPLAUSIBLE = auto()  # outside the plausibility ranges
    UNIT_SUSPECT = auto()  # implausible, but plausible in another unit (kPa, mg/dL)
    CONTROL_SOLUTION = auto()
    DUPLICATE = auto()  # the same measurement again (same values within a minute)
    SENSOR_FAULT = auto()  # the meter says the result is unreliable
    BELOW_METER_RANGE = auto()  # glucose "LO": a severe hypo, counted as one
    ABOVE_METER_RANGE = auto()  # glucose "HI"
    BODY_MOVEMENT = auto()
    CUFF_TOO_LOOSE = auto()
    IMPROPER_POSITION = auto()
    IRREGULAR_PULSE = auto()
    PULSE_RATE_ABOVE_RANGE = auto()
    PULSE_RATE_BELOW_RANGE = auto()
    PULSE_IMPLAUSIBLE = auto()
    SPIKE = auto()  # Hampel: far from the patient's neighbouring readings
    TIME_ESTIMATED = auto()  # measured_at is the receive time (device clock unknown or unset)
    TIME_CORRECTED = auto()  # measured_at is the device time corrected for its clock's offset
    BATTERY_LOW = auto()
    TIME_FAULT = auto()  # the meter reports a time fault
    UNKNOWN_FLAG = auto()  # a device flag we do not know (kept, shown)


#: Left out of every rule.
EXCLUDED = (
    Mark.FAILED | Mark.IMPLAUSIBLE | Mark.CONTROL_SOLUTION | Mark.DUPLICATE | Mark.SENSOR_FAULT
)
#: Left out of means, trends and variability, but seen by the threshold rules.
NOT_FOR_STATISTICS = (
    EXCLUDED
    | Mark.SPIKE
    | Mark.BODY_MOVEMENT
    | Mark.CUFF_TOO_LOOSE
    | Mark.IMPROPER_POSITION
    | Mark.BELOW_METER_RANGE
    | Mark.ABOVE_METER_RANGE
)
#: The pulse value of the reading is not used for pulse statistics.
PULSE_NOT_USABLE = (
    Mark.PULSE_RATE_ABOVE_RANGE | Mark.PULSE_RATE_BELOW_RANGE | Mark.PULSE_IMPLAUSIBLE
)

#: Hampel parameters for blood pressure: a window of 3 readings either side (a day and a half
#: of morning/evening duplicates); 3 robust SDs; the SD floored at 5 mmHg, the within-person SD
#: of home readings (RULES.md), so a spike is always more than 15 mmHg off the local median.
HAMPEL_HALF_WINDOW = 3
HAMPEL_SIGMAS = 3.0
HAMPEL_MIN_SCALE_MMHG = 5.0
#: Values are compared at this resolution (cuffs report whole mmHg).
HAMPEL_RESOLUTION_MMHG = 0.1
#: Readings with identical values this close together are one measurement delivered twice
#: (a device re-sending a record under a new id); genuine ESH duplicates are 1-2 min apart and
#: almost never identical in every value.
DUPLICATE_WITHIN_SECONDS = 60.0
_DUPLICATE_LAGS = 3

_BP_FLAG_MARKS = {
    "body_movement": Mark.BODY_MOVEMENT,
    "cuff_too_loose": Mark.CUFF_TOO_LOOSE,
    "irregular_pulse": Mark.IRREGULAR_PULSE,
    "pulse_rate_above_range": Mark.PULSE_RATE_ABOVE_RANGE,
    "pulse_rate_below_range": Mark.PULSE_RATE_BELOW_RANGE,
    "improper_position": Mark.IMPROPER_POSITION,
}
SENSOR_FAULTS = (
    "sensor_malfunction",
    "sample_size_insufficient",
    "strip_insertion_error",
    "strip_type_incorrect",
    "sensor_temperature_too_high",
    "sensor_temperature_too_low",
    "sensor_read_interrupted",
    "general_device_fault",
)
_SENSOR_FAULT_BITS = sum(bit(n, GLUCOSE_STATUS) for n in SENSOR_FAULTS)
LO_BIT = bit("result_lower_than_device_can_process", GLUCOSE_STATUS)
HI_BIT = bit("result_higher_than_device_can_process", GLUCOSE_STATUS)


@dataclass(frozen=True, eq=False)
class BloodPressureQuality:
    """Marks of columns sorted by patient and time, with what the explanations need."""

    marks: np.ndarray  # uint32 Mark bits
    duplicate_of: np.ndarray  # row of the reading this one repeats, -1 if none
    systolic_median: np.ndarray  # Hampel neighbourhood median (NaN: not checked)
    systolic_scale: np.ndarray
    diastolic_median: np.ndarray
    diastolic_scale: np.ndarray


@dataclass(frozen=True, eq=False)
class GlucoseQuality:
    marks: np.ndarray
    duplicate_of: np.ndarray


def blood_pressure_quality(cols: BloodPressureColumns) -> BloodPressureQuality:
    """Marks for each row of ``cols``, which must be sorted by patient and time."""
    s, d, p = cols.systolic, cols.diastolic, cols.pulse
    marks = np.zeros(len(cols), np.uint32)
    failed = np.isnan(s) | np.isnan(d)
    with np.errstate(invalid="ignore"):
        implausible = ~failed & (
            (s < SYSTOLIC_RANGE[0])
            | (s > SYSTOLIC_RANGE[1])
            | (d < DIASTOLIC_RANGE[0])
            | (d > DIASTOLIC_RANGE[1])
            | (d >= s)
        )
        ks, kd = s * MMHG_PER_KPA, d * MMHG_PER_KPA
        kpa = implausible & (ks >= SYSTOLIC_RANGE[0]) & (ks <= SYSTOLIC_RANGE[1])
        kpa &= (kd >= DIASTOLIC_RANGE[0]) & (kd <= DIASTOLIC_RANGE[1]) & (kd < ks)
        pulse_bad = ~np.isnan(p) & ((p < PULSE_RANGE[0]) | (p > PULSE_RANGE[1]))
    _set(marks, failed, Mark.FAILED)
    _set(marks, implausible, Mark.IMPLAUSIBLE)
    _set(marks, kpa, Mark.UNIT_SUSPECT)
    _set(marks, pulse_bad, Mark.PULSE_IMPLAUSIBLE)
    for name, mark in _BP_FLAG_MARKS.items():
        _set(marks, (cols.flags & bit(name, BP_FLAGS)) != 0, mark)
    _set(marks, (cols.flags & OTHER) != 0, Mark.UNKNOWN_FLAG)
    _time_marks(marks, cols.time_source)
    duplicate_of = _duplicates(cols.patient, cols.time, (s, d, p, cols.flags))
    _set(marks, duplicate_of >= 0, Mark.DUPLICATE)

    candidate = (marks & (Mark.FAILED | Mark.IMPLAUSIBLE | Mark.DUPLICATE)) == 0

    def spikes(values: np.ndarray) -> HampelResult:
        return hampel_grouped(
            np.where(candidate, values, np.nan),
            cols.patient,
            half_window=HAMPEL_HALF_WINDOW,
            n_sigmas=HAMPEL_SIGMAS,
            min_scale=HAMPEL_MIN_SCALE_MMHG,
            resolution=HAMPEL_RESOLUTION_MMHG,
        )

    results = [spikes(s), spikes(d)]
    for result in results:
        _set(marks, result.spikes, Mark.SPIKE)
    return BloodPressureQuality(
        marks,
        duplicate_of,
        results[0].medians,
        results[0].scales,
        results[1].medians,
        results[1].scales,
    )


def glucose_quality(cols: GlucoseColumns) -> GlucoseQuality:
    """Marks for each row of ``cols``, which must be sorted by patient and time."""
    g, status = cols.mmol_l, cols.status.astype(np.uint32)
    marks = np.zeros(len(cols), np.uint32)
    lo, hi = (status & LO_BIT) != 0, (status & HI_BIT) != 0
    missing = np.isnan(g)
    low, high = GLUCOSE_RANGE_MMOL_L
    with np.errstate(invalid="ignore"):
        implausible = ~missing & ~lo & ~hi & ((g < low) | (g > high))
        mg_dl = implausible & (g > high) & (g / MG_DL_PER_MMOL_L >= low)
        mg_dl &= g / MG_DL_PER_MMOL_L <= high
    _set(marks, missing & ~lo & ~hi, Mark.FAILED)
    _set(marks, implausible, Mark.IMPLAUSIBLE)
    _set(marks, mg_dl, Mark.UNIT_SUSPECT)
    _set(marks, lo, Mark.BELOW_METER_RANGE)
    _set(marks, hi, Mark.ABOVE_METER_RANGE)
    _set(marks, cols.control_solution, Mark.CONTROL_SOLUTION)
    _set(marks, (status & _SENSOR_FAULT_BITS) != 0, Mark.SENSOR_FAULT)
    _set(marks, (status & bit("device_battery_low", GLUCOSE_STATUS)) != 0, Mark.BATTERY_LOW)
    _set(marks, (status & bit("time_fault", GLUCOSE_STATUS)) != 0, Mark.TIME_FAULT)
    _set(marks, (status & OTHER) != 0, Mark.UNKNOWN_FLAG)
    _time_marks(marks, cols.time_source)
    duplicate_of = _duplicates(cols.patient, cols.time, (g, cols.status, cols.control_solution))
    _set(marks, duplicate_of >= 0, Mark.DUPLICATE)
    return GlucoseQuality(marks, duplicate_of)


def glucose_for_thresholds(cols: GlucoseColumns, marks: np.ndarray) -> np.ndarray:
    """The value each reading counts as for hypo and range rules: a "LO" reading as 0 (below
    every hypo threshold), a "HI" as +inf, excluded readings as NaN."""
    value = np.where((marks & Mark.BELOW_METER_RANGE) != 0, 0.0, cols.mmol_l)
    value = np.where((marks & Mark.ABOVE_METER_RANGE) != 0, np.inf, value)
    return np.where((marks & EXCLUDED) != 0, np.nan, value)


def names(mark: int) -> list[str]:
    """The marks of one reading, as lower-case names."""
    return [str(m.name).lower() for m in Mark if mark & m]


@dataclass(frozen=True, slots=True)
class QualityNote:
    """Why one reading is marked, for clinicians and the backtest."""

    reading_id: str
    marks: tuple[str, ...]
    #: Left out of every rule.
    excluded: bool
    #: Left out of means, trends and variability (the threshold rules still see it).
    not_for_statistics: bool
    detail: str


def assess_blood_pressure(observations: Sequence[BloodPressureObservation]) -> list[QualityNote]:
    """Quality notes for one patient's blood-pressure readings (only the marked ones)."""
    ordered = sorted(observations, key=lambda o: o.measured_at)
    cols = sort_by_patient_and_time(BloodPressureColumns.from_observations([ordered]))
    q = blood_pressure_quality(cols)
    notes = []
    for i, o in enumerate(ordered):
        mark = int(q.marks[i])
        if not mark:
            continue
        details = []
        problem = blood_pressure_problem(o)
        if problem and mark & (Mark.FAILED | Mark.IMPLAUSIBLE):
            details.append(problem)
        if mark & Mark.DUPLICATE:
            details.append(f"same values as reading {ordered[q.duplicate_of[i]].reading_id}")
        if mark & Mark.SPIKE:
            details.append(
                f"{o.systolic:g}/{o.diastolic:g} mmHg against a local median of"
                f" {q.systolic_median[i]:g}/{q.diastolic_median[i]:g} mmHg"
                f" (robust SD {q.systolic_scale[i]:.1f}/{q.diastolic_scale[i]:.1f})"
            )
        notes.append(_note(o.reading_id, mark, details))
    return notes


def assess_glucose(observations: Sequence[GlucoseObservation]) -> list[QualityNote]:
    """Quality notes for one patient's glucose readings (only the marked ones)."""
    ordered = sorted(observations, key=lambda o: o.measured_at)
    cols = GlucoseColumns.from_observations([ordered])
    q = glucose_quality(cols)
    notes = []
    for i, o in enumerate(ordered):
        mark = int(q.marks[i])
        if not mark:
            continue
        details = []
        if mark & Mark.IMPLAUSIBLE and o.mmol_l is not None:
            details.append(glucose_problem(o.mmol_l) or "")
        if mark & Mark.DUPLICATE:
            details.append(f"same value as reading {ordered[q.duplicate_of[i]].reading_id}")
        if mark & Mark.BELOW_METER_RANGE:
            details.append("below the meter's range (LO): counted as level 2 hypoglycaemia")
        if mark & (Mark.SENSOR_FAULT | Mark.UNKNOWN_FLAG):
            details.append("meter status: " + ", ".join(sorted(o.sensor_status)))
        notes.append(_note(o.reading_id, mark, details))
    return notes


def _note(reading_id: str, mark: int, details: list[str]) -> QualityNote:
    return QualityNote(
        reading_id=reading_id,
        marks=tuple(names(mark)),
        excluded=bool(mark & EXCLUDED),
        not_for_statistics=bool(mark & NOT_FOR_STATISTICS),
        detail="; ".join(d for d in details if d),
    )


def _set(marks: np.ndarray, where: np.ndarray, mark: Mark) -> None:
    marks[where] |= np.uint32(mark)


def _time_marks(marks: np.ndarray, time_source: np.ndarray) -> None:
    _set(marks, time_source == 1, Mark.TIME_CORRECTED)
    _set(marks, time_source == 2, Mark.TIME_ESTIMATED)


def _duplicates(
    patient: np.ndarray, time: np.ndarray, values: tuple[np.ndarray, ...]
) -> np.ndarray:
    """For each row, the earlier row (same patient, within a minute, every value equal) it
    repeats, or -1. Rows are sorted by patient and time, so only a few rows back can match."""
    n = len(patient)
    duplicate_of = np.full(n, -1, np.intp)
    for lag in range(_DUPLICATE_LAGS, 0, -1):  # the nearest match wins (written last)
        if n <= lag:
            continue
        # Readings minutes apart are the rule: compare values only for the few that are close.
        rows = np.flatnonzero(
            (patient[lag:] == patient[:-lag])
            & (time[lag:] - time[:-lag] <= DUPLICATE_WITHIN_SECONDS)
        )
        rows += lag
        same = np.ones(len(rows), dtype=bool)
        for v in values:
            a, b = v[rows], v[rows - lag]
            equal = a == b
            if v.dtype.kind == "f":
                equal |= np.isnan(a) & np.isnan(b)
            same &= equal
        duplicate_of[rows[same]] = rows[same] - lag
    # A chain (a, a', a'') points at the first of the chain.
    chained = duplicate_of >= 0
    while True:
        target = duplicate_of[chained]
        deeper = duplicate_of[target] >= 0
        if not deeper.any():
            break
        rows = np.flatnonzero(chained)[deeper]
        duplicate_of[rows] = duplicate_of[duplicate_of[rows]]
    return duplicate_of
