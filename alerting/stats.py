"""Robust trend statistics, for one series and for many series (rows) at once.

- Mann-Kendall: is there a monotonic trend? S = sum of sign(y_j - y_i) over pairs i < j, normal
  approximation with continuity correction; one-sided here (we look for rises).
- Theil-Sen: the median of pairwise slopes, robust to a few outlying days.
- CUSUM (one-sided, upper): S_t = max(0, S_{t-1} + z_t - k) on standardised daily means; it
  accumulates evidence of a shift up of about 2k SDs and forgets noise.

Missing days (NaN) are skipped, not imputed. The row-wise versions serve the batch rules
(one row per patient); the one-series versions are the reference the tests hold them to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from alerting.filters import MAD_TO_SD


@dataclass(frozen=True, slots=True)
class MannKendall:
    s: float
    var_s: float
    z: float
    #: One-sided p-value for an increasing trend.
    p_increasing: float
    n: int


def mann_kendall(values: ArrayLike) -> MannKendall:
    """Mann-Kendall test of one series in time order (NaN dropped), ties corrected."""
    y = np.asarray(values, dtype=float)
    y = y[~np.isnan(y)]
    n = len(y)
    s = float(np.sign(y[None, :] - y[:, None])[np.triu_indices(n, 1)].sum()) if n > 1 else 0.0
    _, counts = np.unique(y, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - float((counts * (counts - 1) * (2 * counts + 5)).sum())) / 18
    z = _z(np.array([s]), np.array([var]))[0]
    return MannKendall(s, var, float(z), float(special.ndtr(-z)), n)


def theil_sen(values: ArrayLike) -> float:
    """Theil-Sen slope per step of a series at x = 0, 1, 2, ... (NaN dropped)."""
    y = np.asarray(values, dtype=float)
    x = np.arange(len(y), dtype=float)
    keep = ~np.isnan(y)
    if keep.sum() < 2:
        return float("nan")
    from scipy import stats  # only here: scipy.stats takes most of a second to import

    return float(stats.theilslopes(y[keep], x[keep]).slope)


def cusum_upper(z: ArrayLike, k: float) -> np.ndarray:
    """The upper CUSUM path of standardised values ``z`` (NaN: the sum carries over)."""
    out = np.empty(len(np.asarray(z)))
    s = 0.0
    for i, value in enumerate(np.asarray(z, dtype=float)):
        if not np.isnan(value):
            s = max(0.0, s + value - k)
        out[i] = s
    return out


def nanmedian_rows(x: np.ndarray) -> np.ndarray:
    """Median of each row ignoring NaN (NaN for an empty row): one sort, no masked arrays."""
    count = (~np.isnan(x)).sum(axis=1)
    ordered = np.sort(x, axis=1)
    rows = np.arange(len(x))
    low = ordered[rows, np.maximum(count - 1, 0) // 2]
    high = ordered[rows, count // 2]
    median = (low + high) / 2
    median[count == 0] = np.nan
    return median


def robust_sd_rows(x: np.ndarray) -> np.ndarray:
    """1.4826 x MAD of each row, ignoring NaN."""
    median = nanmedian_rows(x)
    return MAD_TO_SD * nanmedian_rows(np.abs(x - median[:, None]))


def mann_kendall_rows(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mann-Kendall per row: (S, n, one-sided p for an increase). NaN days are skipped. Ties are
    not corrected for (daily means of several readings rarely tie); ignoring them overstates the
    variance, so the test errs on the quiet side."""
    n = (~np.isnan(y)).sum(axis=1)
    s = np.zeros(len(y))
    for lag in range(1, y.shape[1]):  # every pair (i, i + lag); comparisons with NaN are False
        later, earlier = y[:, lag:], y[:, :-lag]
        s += np.count_nonzero(later > earlier, axis=1)
        s -= np.count_nonzero(later < earlier, axis=1)
    var = n * (n - 1) * (2 * n + 5) / 18.0
    z = _z(s, var)
    return s, n, special.ndtr(-z)


def theil_sen_rows(y: np.ndarray) -> np.ndarray:
    """Theil-Sen slope per row (per column step), NaN days skipped; NaN with < 2 days."""
    d = y.shape[1]
    i, j = np.triu_indices(d, 1)
    slopes = (y[:, j] - y[:, i]) / (j - i)
    return nanmedian_rows(slopes)


@dataclass(frozen=True, slots=True)
class CusumState:
    """Where the upper CUSUM of each row ended, and the run since it last left zero."""

    s: np.ndarray
    run_days: np.ndarray  # days with data in the current run
    run_mean: np.ndarray  # mean of the (unstandardised) values in the run; NaN without a run
    first_day: np.ndarray  # column where the run began (-1 without a run)


def cusum_rows(values: np.ndarray, sigma: np.ndarray, k: float | np.ndarray) -> CusumState:
    """Upper CUSUM over the columns of ``values`` (residuals, one row per series), standardised
    by ``sigma`` per row. NaN columns carry the sum over unchanged."""
    rows, days = values.shape
    s = np.zeros(rows)
    run_days = np.zeros(rows, np.intp)
    run_sum = np.zeros(rows)
    first = np.full(rows, -1, np.intp)
    k = np.broadcast_to(np.asarray(k, dtype=float), (rows,))
    for day in range(days):
        r = values[:, day]
        has = ~np.isnan(r)
        step = np.maximum(0.0, s + np.where(has, r, 0.0) / sigma - k)
        new = np.where(has, step, s)
        reset = has & (new == 0)
        started = has & (new > 0) & (s == 0)
        first = np.where(started, day, np.where(reset, -1, first))
        run_days = np.where(reset, 0, run_days + (has & (new > 0)))
        run_sum = np.where(reset, 0.0, run_sum + np.where(has & (new > 0), r, 0.0))
        s = new
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(run_days > 0, run_sum / run_days, np.nan)
    return CusumState(s, run_days, mean, first)


def _z(s: np.ndarray, var: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(s > 0, (s - 1) / np.sqrt(var), np.where(s < 0, (s + 1) / np.sqrt(var), 0.0))
    return np.where(var > 0, z, 0.0)
