"""Signal filters: each marks readings (with the reason), none removes them.

Hampel filter: a value further than ``n_sigmas`` robust standard deviations (1.4826 x MAD) from
the median of its neighbours is a spike. The outlier rule alone changes the discarded share from
1 % to 17 % (../shared/clinical/RULES.md), so its parameters are explicit and reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

#: MAD to standard deviation for normally distributed data.
MAD_TO_SD = 1.4826


@dataclass(frozen=True, slots=True)
class HampelResult:
    spikes: np.ndarray  # bool per value
    medians: np.ndarray  # the neighbourhood median each value was compared with
    scales: np.ndarray  # the robust SD used (after the floor)


def hampel(
    values: ArrayLike, *, half_window: int = 3, n_sigmas: float = 3.0, min_scale: float = 0.0
) -> HampelResult:
    """Spikes in a series ordered in time (NaN values are neither spikes nor neighbours).

    Each value is compared with the median of its window: itself and the ``half_window`` valid
    values on either side (fewer at the ends). ``min_scale`` floors the robust SD: with
    identical neighbours the MAD is 0 and any difference would be a spike, so give the
    measurement's resolution (e.g. 2 mmHg).
    """
    if half_window < 1:
        raise ValueError("half_window must be at least 1")
    x = np.asarray(values, dtype=float)
    valid = np.flatnonzero(~np.isnan(x))
    spikes = np.zeros(len(x), dtype=bool)
    medians = np.full(len(x), np.nan)
    scales = np.full(len(x), np.nan)
    v = x[valid]
    for k, i in enumerate(valid):
        lo, hi = max(0, k - half_window), min(len(v), k + half_window + 1)
        neighbours = v[lo:hi]  # the value itself included, as in the standard filter
        if len(neighbours) < 3:
            continue  # too little context to call anything a spike
        median = float(np.median(neighbours))
        scale = max(MAD_TO_SD * float(np.median(np.abs(neighbours - median))), min_scale)
        medians[i], scales[i] = median, scale
        spikes[i] = abs(x[i] - median) > n_sigmas * scale
    return HampelResult(spikes, medians, scales)
