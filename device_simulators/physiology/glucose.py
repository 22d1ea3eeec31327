"""Blood glucose of one virtual patient (mmol/L): fasting level, meals, hypoglycaemia.

The true level over a day is the fasting baseline (the patient's own, plus a day-to-day offset,
plus any worsening of control since it began) and one post-prandial curve per meal: it rises to
its peak about an hour after the meal and is mostly back after three
(``rise * x^2 * e^(2(1 - x))`` with ``x`` the time since the meal in peak times). Meals move a
little from day to day and their rise varies. A hypoglycaemia episode (``Hypoglycaemia``) pulls
the level down to its nadir in the middle of the episode (a half sine), whatever it would have
been. A meter reads the true level with a relative error (``meter_cv``, ~5 %, well inside
ISO 15197).

Pure: the random numbers come from the caller's ``numpy`` Generator, one call per day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

import numpy as np

#: Hypoglycaemia thresholds (ADA; shared/clinical/RULES.md).
HYPO_LEVEL_1 = 3.9
HYPO_LEVEL_2 = 3.0
#: The lowest a living patient's glucose goes in this model.
MIN_GLUCOSE = 1.2
#: Day-to-day variation of a meal's rise (lognormal sigma).
MEAL_RISE_SIGMA = 0.2


@dataclass(frozen=True, slots=True)
class GlucoseProfile:
    fasting: float
    day_to_day_sd: float = 0.4
    meal_rise: float = 3.0
    meal_times: tuple[time, ...] = (time(8, 0), time(13, 0), time(19, 0))
    meal_jitter_minutes: float = 20.0
    peak_minutes: float = 60.0
    meter_cv: float = 0.05

    def __post_init__(self) -> None:
        if not self.fasting > 0:
            raise ValueError(f"fasting glucose must be > 0, got {self.fasting}")
        if self.peak_minutes <= 0:
            raise ValueError(f"peak_minutes must be > 0, got {self.peak_minutes}")


@dataclass(frozen=True, slots=True)
class WorseningControl:
    """From ``start`` the fasting level rises ``fasting_per_day`` mmol/L a day and meal rises
    grow by ``meal_rise_growth`` (a fraction) over ``days`` days; then it stays."""

    start: datetime
    fasting_per_day: float
    days: float
    meal_rise_growth: float = 0.5

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    def progress(self, at: datetime) -> float:
        """Days of worsening so far (0 before the start, ``days`` after the end)."""
        elapsed = (at - self.start).total_seconds() / 86400
        return min(max(elapsed, 0.0), self.days)


@dataclass(frozen=True, slots=True)
class Hypoglycaemia:
    """From ``start`` for ``duration`` the level falls to ``nadir`` (at the middle) and back.

    The patient feels it and measures near the nadir (``measure_at``), treats it and checks
    again 15 minutes later (``recheck_at``), as the "15-15 rule" asks."""

    start: datetime
    nadir: float
    duration: timedelta = timedelta(minutes=45)
    recheck_after: timedelta = timedelta(minutes=15)

    @property
    def end(self) -> datetime:
        return self.start + self.duration

    @property
    def measure_at(self) -> datetime:
        return self.start + self.duration * 0.45

    @property
    def recheck_at(self) -> datetime:
        return self.measure_at + self.recheck_after

    def depth(self, at: datetime) -> float:
        """0 outside the episode, 1 at its nadir."""
        if not self.start <= at < self.end:
            return 0.0
        return math.sin(math.pi * (at - self.start) / self.duration)


@dataclass(frozen=True, slots=True)
class GlucoseDay:
    """One day's meals and fasting level: the true glucose at any moment of it."""

    fasting: float
    meals: tuple[tuple[datetime, float], ...]  # (meal time, rise at its peak)
    peak: timedelta
    hypos: tuple[Hypoglycaemia, ...] = field(default=())

    def true_value(self, at: datetime) -> float:
        value = self.fasting
        for meal_at, rise in self.meals:
            x = (at - meal_at) / self.peak
            if x > 0:
                value += rise * x * x * math.exp(2.0 * (1.0 - x))
        for hypo in self.hypos:
            depth = hypo.depth(at)
            if depth > 0:
                value -= (value - min(hypo.nadir, value)) * depth
        return max(value, MIN_GLUCOSE)


@dataclass(frozen=True)
class GlucoseModel:
    profile: GlucoseProfile
    worsening: tuple[WorseningControl, ...] = ()
    hypos: tuple[Hypoglycaemia, ...] = ()

    def day(self, day: date, tz: tzinfo, rng: np.random.Generator) -> GlucoseDay:
        """The day's fasting level and meals (draws 1 + 2 per meal numbers from ``rng``)."""
        p = self.profile
        noon = datetime.combine(day, time(12), tz)
        fasting = p.fasting + rng.normal(0.0, 1.0) * p.day_to_day_sd
        growth = 1.0
        for w in self.worsening:
            done = w.progress(noon)
            fasting += w.fasting_per_day * done
            growth += w.meal_rise_growth * (done / w.days if w.days > 0 else 1.0)
        meals = []
        for meal_time in p.meal_times:
            shift, spread = rng.normal(0.0, 1.0), rng.normal(0.0, 1.0)
            at = datetime.combine(day, meal_time, tz) + timedelta(
                minutes=float(shift) * p.meal_jitter_minutes
            )
            rise = p.meal_rise * growth * math.exp(float(spread) * MEAL_RISE_SIGMA)
            meals.append((at, rise))
        start = datetime.combine(day, time(0), tz)
        end = datetime.combine(day + timedelta(days=1), time(0), tz)
        hypos = tuple(h for h in self.hypos if h.start < end and h.end > start)
        return GlucoseDay(
            max(float(fasting), 3.5), tuple(meals), timedelta(minutes=p.peak_minutes), hypos
        )

    def read(self, true_value: float, rng: np.random.Generator) -> float:
        """What a meter shows for ``true_value`` (before its range and rounding)."""
        return max(true_value * (1.0 + rng.normal(0.0, 1.0) * self.profile.meter_cv), 0.1)
