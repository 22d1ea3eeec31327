"""Signal filters: each marks readings (with the reason), none removes them.

Hampel filter: a value further than ``n_sigmas`` robust standard deviations (1.4826 x MAD) from
the median of its neighbours is a spike. The outlier rule alone changes the discarded share from
1 % to 17 % (../shared/clinical/RULES.md), so its parameters are explicit and reported.

One implementation serves one series and a whole cohort: ``hampel_grouped`` runs over many
patients' series at once (rows sorted by patient, then time), with windows that never cross
from one patient to the next, in chunks so memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

#: MAD to standard deviation for normally distributed data.
MAD_TO_SD = 1.4826
#: Rows per chunk of the vectorised filter (each row holds a window of 2 x half_window + 1).
_CHUNK = 1 << 19


@dataclass(frozen=True, slots=True)
class HampelResult:
    spikes: np.ndarray  # bool per value
    medians: np.ndarray  # the neighbourhood median each value was compared with (float32)
    scales: np.ndarray  # the robust SD used, after the floor (float32)


def hampel(
    values: ArrayLike, *, half_window: int = 3, n_sigmas: float = 3.0, min_scale: float = 0.0
) -> HampelResult:
    """Spikes in a series ordered in time (NaN values are neither spikes nor neighbours).

    Each value is compared with the median of its window: itself and the ``half_window`` valid
    values on either side (fewer at the ends). ``min_scale`` floors the robust SD: with
    identical neighbours the MAD is 0 and any difference would be a spike, so give the
    measurement's resolution (e.g. 2 mmHg).
    """
    x = np.asarray(values, dtype=float)
    return hampel_grouped(
        x,
        np.zeros(len(x), np.intp),
        half_window=half_window,
        n_sigmas=n_sigmas,
        min_scale=min_scale,
    )


def hampel_grouped(
    values: ArrayLike,
    groups: ArrayLike,
    *,
    half_window: int = 3,
    n_sigmas: float = 3.0,
    min_scale: float | ArrayLike = 0.0,
    resolution: float | None = None,
) -> HampelResult:
    """``hampel`` over many series at once: ``groups`` (e.g. the patient index) must be sorted,
    and within a group the values in time order. A window never takes neighbours from another
    group; fewer than three values in a window flag nothing (too little context).

    Windows are computed in float32 (readings carry at most one decimal) and, for the windows
    that are full (all but the ends of each series), the MAD comes straight from the sorted
    window: the deviations below and above the median are each already in order, so their
    median is a merge of two sorted lists, not a second sort. With ``resolution`` (e.g. 0.1
    mmHg) the values are taken at that resolution as 16-bit integers and full windows are
    sorted by a sorting network over whole columns: several times faster on a cohort.
    """
    if half_window < 1:
        raise ValueError("half_window must be at least 1")
    x = np.asarray(values, dtype=float)
    g = np.asarray(groups)
    if len(g) != len(x):
        raise ValueError(f"{len(g)} groups for {len(x)} values")
    hw, width = half_window, 2 * half_window + 1
    valid = np.flatnonzero(~np.isnan(x))
    every = len(valid) == len(x)
    v = (x if every else x[valid]).astype(np.float32)
    vg = g if every else g[valid]
    n = len(v)
    median = np.empty(n, np.float32)
    mad = np.empty(n, np.float32)
    quantised = _quantise(v, resolution) if hw in _NETWORKS else None
    if quantised is not None:
        v = quantised.astype(np.float32) * np.float32(resolution)

    full = np.zeros(n, dtype=bool)
    if n >= width:
        full[hw : n - hw] = vg[: n - 2 * hw] == vg[2 * hw :]  # sorted: ends equal, all equal
        windows = np.lib.stride_tricks.sliding_window_view(v, width)
        for start in range(hw, n - hw, _CHUNK):
            stop = min(start + _CHUNK, n - hw)
            if quantised is not None:
                columns = _network_sort(quantised, start - hw, stop - hw, width)
                mid, best = _median_and_mad(columns, hw)
                median[start:stop] = mid.astype(np.float32) * np.float32(resolution)
                mad[start:stop] = best.astype(np.float32) * np.float32(resolution)
                continue
            ordered = np.sort(windows[start - hw : stop - hw], axis=1)
            mid, best = _median_and_mad([ordered[:, k] for k in range(width)], hw)
            median[start:stop], mad[start:stop] = mid, best
    enough = full.copy()

    partial = np.flatnonzero(~full)  # the ends of each series
    if len(partial):
        index = partial[:, None] + np.arange(-hw, hw + 1)
        inside = (index >= 0) & (index < n)
        index = np.clip(index, 0, n - 1)
        window = v[index]
        window[~inside | (vg[index] != vg[partial, None])] = np.nan
        c = (~np.isnan(window)).sum(axis=1)
        m = _row_median(window, c)
        median[partial], mad[partial] = m, _row_median(np.abs(window - m[:, None]), c)
        enough[partial] = c >= 3

    floor = np.asarray(min_scale, dtype=np.float32)
    if floor.ndim:
        floor = floor if every else floor[valid]
    scale = np.maximum(mad * np.float32(MAD_TO_SD), floor)
    spike = enough & (np.abs(v - median) > np.float32(n_sigmas) * scale)
    median[~enough] = np.nan
    scale[~enough] = np.nan
    if every:
        return HampelResult(spike, median, scale)
    spikes = np.zeros(len(x), dtype=bool)
    medians = np.full(len(x), np.nan, np.float32)
    scales = np.full(len(x), np.nan, np.float32)
    spikes[valid], medians[valid], scales[valid] = spike, median, scale
    return HampelResult(spikes, medians, scales)


def _median_and_mad(columns: list[np.ndarray], hw: int) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD of full windows given as sorted columns (column k = k-th smallest)."""
    mid = columns[hw]
    below = [mid - columns[hw - i] for i in range(1, hw + 1)]  # increasing
    above = [columns[hw + i] - mid for i in range(1, hw + 1)]  # increasing
    # The hw-th smallest of the 2 hw deviations besides the median's own 0 (so the median of
    # all 2 hw + 1): min over i of max(i-th smallest below, (hw - i)-th smallest above).
    best = np.minimum(below[hw - 1], above[hw - 1])
    for i in range(1, hw):
        best = np.minimum(best, np.maximum(below[i - 1], above[hw - i - 1]))
    return mid, best


#: Sorting networks (comparator pairs) for windows of 3, 5 and 7 values, by half window.
_NETWORKS = {
    1: ((0, 2), (0, 1), (1, 2)),
    2: ((0, 3), (1, 4), (0, 2), (1, 3), (0, 1), (2, 4), (1, 2), (3, 4), (2, 3)),
    3: (
        (0, 6),
        (2, 3),
        (4, 5),
        (0, 2),
        (1, 4),
        (3, 6),
        (0, 1),
        (2, 5),
        (3, 4),
        (1, 2),
        (4, 6),
        (2, 3),
        (4, 5),
        (1, 2),
        (3, 4),
        (5, 6),
    ),
}
#: Quantised values stay within this, so that differences of two still fit 16 bits.
_INT16_LIMIT = 16_000


def _quantise(v: np.ndarray, resolution: float | None) -> np.ndarray | None:
    """``v`` in units of ``resolution`` as int16, or None when there is no resolution or the
    values do not fit."""
    if resolution is None or not len(v):
        return None
    units = np.rint(v / np.float32(resolution))
    if np.abs(units).max() > _INT16_LIMIT:
        return None
    return units.astype(np.int16)


def _network_sort(q: np.ndarray, start: int, stop: int, width: int) -> list[np.ndarray]:
    """The windows starting at rows start..stop-1 of ``q``, sorted, as columns."""
    columns = [q[start + k : stop + k].copy() for k in range(width)]
    for i, j in _NETWORKS[width // 2]:
        low = np.minimum(columns[i], columns[j])
        np.maximum(columns[i], columns[j], out=columns[j])
        columns[i] = low
    return columns


def _row_median(window: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Median of each row's first ``count`` values after sorting (NaN sorts last)."""
    ordered = np.sort(window, axis=1)
    rows = np.arange(len(window))
    low = ordered[rows, np.maximum(count - 1, 0) // 2]
    high = ordered[rows, count // 2]
    return (low + high) / 2
