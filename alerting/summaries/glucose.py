"""Glucose summary over a period: mean, variability, time in ranges, GMI, hypoglycaemia events.

Consensus definitions (../shared/clinical/RULES.md): ranges in mmol/L — level 2 hypo < 3.0,
level 1 hypo 3.0-3.9, in range 3.9-10.0, level 1 hyper 10.0-13.9, level 2 hyper > 13.9;
CV = SD / mean (target <= 36 %); GMI (%) = 3.31 + 0.02392 x mean glucose in mg/dL (Bergenstal
2018). With fingerstick readings the "time" in range is the share of readings: this says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import ArrayLike

from alerting.plausibility import MG_DL_PER_MMOL_L

HYPO_LEVEL_2 = 3.0
HYPO_LEVEL_1 = 3.9
HYPER_LEVEL_1 = 10.0
HYPER_LEVEL_2 = 13.9
#: Readings below level 1 this close together belong to one hypoglycaemia event.
HYPO_EVENT_GAP = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class GlucoseSummary:
    readings: int
    mean_mmol_l: float
    mean_mg_dl: float
    sd_mmol_l: float
    cv_percent: float
    #: Share of readings (%) per range; fingerstick readings are not a continuous time series.
    below_level_2_percent: float
    below_level_1_percent: float  # 3.0 <= g < 3.9
    in_range_percent: float  # 3.9 <= g <= 10.0
    above_level_1_percent: float  # 10.0 < g <= 13.9
    above_level_2_percent: float  # g > 13.9
    gmi_percent: float
    hypo_events: int
    hypo_level_2_events: int
    #: By meal context ("fasting", "preprandial", "postprandial", ...) when the meter gave one.
    by_meal: dict[str, MealSummary] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MealSummary:
    readings: int
    mean_mmol_l: float


def summarise_glucose(
    times: list[datetime], mmol_l: ArrayLike, meals: Sequence[str | None] | None = None
) -> GlucoseSummary | None:
    """Summary of the readings given (in mmol/L, with their times); None without readings.

    NaN values (failed measurements) are left out. SD is the sample SD (n - 1); with one
    reading it is 0. ``meals`` (the GLS meal context per reading) adds fasting vs post-meal
    means.
    """
    values = np.asarray(mmol_l, dtype=float)
    if len(times) != len(values):
        raise ValueError(f"{len(times)} times for {len(values)} values")
    keep = ~np.isnan(values)
    values = values[keep]
    kept_times = [t for t, k in zip(times, keep, strict=True) if k]
    n = len(values)
    if n == 0:
        return None
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if n > 1 else 0.0

    def share(mask: np.ndarray) -> float:
        return 100.0 * float(mask.sum()) / n

    events, severe = _hypo_events(kept_times, values)
    by_meal: dict[str, MealSummary] = {}
    if meals is not None:
        if len(meals) != len(keep):
            raise ValueError(f"{len(meals)} meals for {len(keep)} values")
        kept_meals = np.array([m or "" for m, k in zip(meals, keep, strict=True) if k])
        for meal in sorted(set(kept_meals) - {""}):
            chosen = values[kept_meals == meal]
            by_meal[meal] = MealSummary(len(chosen), float(chosen.mean()))
    return GlucoseSummary(
        readings=n,
        mean_mmol_l=mean,
        mean_mg_dl=mean * MG_DL_PER_MMOL_L,
        sd_mmol_l=sd,
        cv_percent=100.0 * sd / mean if mean > 0 else float("nan"),
        below_level_2_percent=share(values < HYPO_LEVEL_2),
        below_level_1_percent=share((values >= HYPO_LEVEL_2) & (values < HYPO_LEVEL_1)),
        in_range_percent=share((values >= HYPO_LEVEL_1) & (values <= HYPER_LEVEL_1)),
        above_level_1_percent=share((values > HYPER_LEVEL_1) & (values <= HYPER_LEVEL_2)),
        above_level_2_percent=share(values > HYPER_LEVEL_2),
        gmi_percent=3.31 + 0.02392 * mean * MG_DL_PER_MMOL_L,
        hypo_events=events,
        hypo_level_2_events=severe,
        by_meal=by_meal,
    )


def _hypo_events(times: list[datetime], values: np.ndarray) -> tuple[int, int]:
    """Episodes of readings below 3.9 mmol/L (consecutive, or within HYPO_EVENT_GAP), and how
    many of them went below 3.0."""
    order = np.argsort(np.array([t.timestamp() for t in times]), kind="stable")
    events = severe = 0
    last_low: datetime | None = None
    episode_severe = False
    for i in order:
        t, g = times[i], values[i]
        if g < HYPO_LEVEL_1:
            new_episode = last_low is None or t - last_low > HYPO_EVENT_GAP
            if new_episode:
                events += 1
                episode_severe = False
            if g < HYPO_LEVEL_2 and not episode_severe:
                severe += 1
                episode_severe = True
            last_low = t
        else:
            last_low = None
    return events, severe
