"""Shared pieces of the batch rules: per-patient sums and counts, states, evidence."""

from __future__ import annotations

from typing import Any

import numpy as np

from alerting.decisions import AlertDecision, RuleState

FIRED = np.int8(RuleState.FIRED)
CLEAR = np.int8(RuleState.CLEAR)
HOLD = np.int8(RuleState.HOLD)
INSUFFICIENT = np.int8(RuleState.INSUFFICIENT_DATA)


def per_patient(n: int, patient: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Sum (or count, without weights) per patient."""
    return np.bincount(patient, weights=weights, minlength=n)[:n].astype(float)


def per_patient_day(
    n: int, days: int, patient: np.ndarray, day: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """(n, days) sums or counts by patient and local day; column days-1 is the day of ``at``,
    rows with older days are left out."""
    keep = day > -days
    index = patient[keep] * days + (day[keep] + days - 1)
    w = None if weights is None else weights[keep]
    return np.bincount(index, weights=w, minlength=n * days)[: n * days].reshape(n, days)


def states(n: int) -> np.ndarray:
    return np.full(n, INSUFFICIENT, np.int8)


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def evidence(reading_ids: list[str], **statistics: Any) -> dict[str, Any]:
    return {"reading_ids": reading_ids, "statistics": statistics}


def first_last(
    n: int, patient: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For rows sorted by patient (and time): each patient's first and last value, and whether
    the patient has any row. Patients without rows get 0."""
    bounds = np.searchsorted(patient, np.arange(n + 1))
    has = bounds[1:] > bounds[:-1]
    first = np.zeros(n, dtype=values.dtype)
    last = np.zeros(n, dtype=values.dtype)
    first[has] = values[bounds[:-1][has]]
    last[has] = values[bounds[1:][has] - 1]
    return first, last, has


def no_decision(patient: int) -> AlertDecision:
    """The ``decide`` of an outcome that cannot fire (no input of the kind the rule reads)."""
    raise AssertionError(f"the rule cannot have fired for patient {patient}: it had no input")
