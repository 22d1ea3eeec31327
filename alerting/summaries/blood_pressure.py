"""Home blood-pressure protocol mean (ESH / Hypertension Canada home-measurement guidance).

Duplicate readings morning and evening over up to 7 days; the first day is discarded (readings
on the first day run high); the rest are averaged. ESH accepts 4-7 days and 12-24 readings: a
mean from fewer than ``min_readings`` readings or ``min_days`` days is reported but marked
insufficient. Home hypertension threshold: mean >= 135 systolic and/or >= 85 diastolic.
Implausible and failed readings are left out before averaging (alerting.plausibility).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

import numpy as np

from alerting.observations import BloodPressureObservation
from alerting.plausibility import blood_pressure_problem

HOME_SYSTOLIC_THRESHOLD = 135.0
HOME_DIASTOLIC_THRESHOLD = 85.0
#: Local hours that count as morning and evening measurements.
MORNING_HOURS = range(4, 12)
EVENING_HOURS = range(16, 24)


@dataclass(frozen=True, slots=True)
class HomeBloodPressureMean:
    systolic: float
    diastolic: float
    pulse: float | None
    morning_systolic: float | None
    morning_diastolic: float | None
    evening_systolic: float | None
    evening_diastolic: float | None
    readings: int
    days: int
    discarded_day: date | None
    sufficient: bool
    above_threshold: bool
    reading_ids: tuple[str, ...]


def home_bp_protocol_mean(
    observations: Sequence[BloodPressureObservation],
    *,
    end: datetime,
    tz: tzinfo,
    days: int = 7,
    min_readings: int = 12,
    min_days: int = 3,
) -> HomeBloodPressureMean | None:
    """The protocol mean of the ``days`` local days ending at ``end``; None without readings.

    ``tz`` is the patient's time zone: days, mornings and evenings are the patient's.
    """
    start = end - timedelta(days=days)
    usable = [
        o
        for o in observations
        if start < o.measured_at <= end and blood_pressure_problem(o) is None
    ]
    if not usable:
        return None
    local_day = [o.measured_at.astimezone(tz).date() for o in usable]
    first_day = min(local_day)
    discarded: date | None = None
    if len(set(local_day)) > 1:  # never discard the only day there is
        discarded = first_day
        usable = [o for o, d in zip(usable, local_day, strict=True) if d != first_day]
        local_day = [d for d in local_day if d != first_day]

    sys_ = np.array([o.systolic for o in usable], dtype=float)
    dia = np.array([o.diastolic for o in usable], dtype=float)
    pulses = np.array([o.pulse for o in usable if o.pulse is not None], dtype=float)
    hours = np.array([o.measured_at.astimezone(tz).hour for o in usable])
    morning = np.isin(hours, list(MORNING_HOURS))
    evening = np.isin(hours, list(EVENING_HOURS))
    systolic, diastolic = float(sys_.mean()), float(dia.mean())
    n_days = len(set(local_day))
    return HomeBloodPressureMean(
        systolic=systolic,
        diastolic=diastolic,
        pulse=float(pulses.mean()) if len(pulses) else None,
        morning_systolic=_mean(sys_[morning]),
        morning_diastolic=_mean(dia[morning]),
        evening_systolic=_mean(sys_[evening]),
        evening_diastolic=_mean(dia[evening]),
        readings=len(usable),
        days=n_days,
        discarded_day=discarded,
        sufficient=len(usable) >= min_readings and n_days >= min_days,
        above_threshold=systolic >= HOME_SYSTOLIC_THRESHOLD
        or diastolic >= HOME_DIASTOLIC_THRESHOLD,
        reading_ids=tuple(o.reading_id for o in usable),
    )


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None
