"""How a virtual patient uses their devices: schedule, adherence, artefacts, double presses.

Kept apart from physiology because they fail independently: a patient whose pressure is
perfectly stable can still skip days, stop measuring, move during a reading or wear the cuff
loosely, and an alerting rule has to survive all of it. Decisions draw from the caller's
``numpy`` Generator in a fixed order (the same number of draws whatever the settings), so one
setting changed in a scenario does not reshuffle every other patient's readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal

import numpy as np

from gateway.codec.glucose_context import Meal

#: Why a patient did not measure on a day (truth "non_adherence" periods carry it).
NonAdherence = Literal["skipped", "weekends_only", "stopped"]
#: Extra noise (SD, mmHg) of a reading taken while the patient moved or talked.
MOVEMENT_EXTRA_SD = 8.0
#: A double press starts another measurement this many seconds after the first (uniform).
DUPLICATE_PRESS_DELAY_S = (30.0, 90.0)
#: Session jitter is cut at this many SDs, so a 07:00 session never drifts into another day.
JITTER_CLIP_SD = 3.0


@dataclass(frozen=True, slots=True)
class Session:
    """One reading the patient intends to take: when, which slot of the day, which repeat."""

    at: datetime
    slot: int
    repeat: int


@dataclass(frozen=True, slots=True)
class Schedule:
    """The prescribed measurement times (local) and how many readings each session takes.

    ``duplicates=2, gap=2 min`` is the ESH home protocol (two readings a minute or two
    apart, morning and evening). ``meals`` names, per time slot, what the patient tags a glucose
    reading as (fasting, preprandial, ...) when they tag it; None leaves a slot untagged.
    """

    times: tuple[time, ...]
    duplicates: int = 1
    gap: timedelta = timedelta(minutes=2)
    jitter_minutes: float = 0.0
    meals: tuple[Meal | None, ...] = ()

    def __post_init__(self) -> None:
        if not self.times:
            raise ValueError("a schedule needs at least one time")
        if self.duplicates < 1:
            raise ValueError(f"duplicates must be >= 1, got {self.duplicates}")
        if self.meals and len(self.meals) != len(self.times):
            raise ValueError(f"{len(self.meals)} meal tags for {len(self.times)} times")

    def meal(self, slot: int) -> Meal | None:
        return self.meals[slot] if self.meals else None

    def sessions(self, day: date, tz: tzinfo, rng: np.random.Generator) -> list[Session]:
        """The readings planned for ``day`` (draws one number per time slot)."""
        sessions = []
        for slot, at in enumerate(self.times):
            jitter = min(max(float(rng.normal(0.0, 1.0)), -JITTER_CLIP_SD), JITTER_CLIP_SD)
            start = datetime.combine(day, at, tz) + timedelta(
                minutes=round(jitter * self.jitter_minutes)
            )
            sessions.extend(
                Session(start + self.gap * repeat, slot, repeat)
                for repeat in range(self.duplicates)
            )
        return sessions


@dataclass(frozen=True, slots=True)
class Adherence:
    """How faithfully the patient follows the schedule.

    ``skip_day``: chance of not measuring at all on a day; ``skip_session``: of skipping one
    session; ``weekends_only``: measures on Saturdays and Sundays only; ``stop_after_day``:
    stops for good from that day of the run on (0-based).
    """

    skip_day: float = 0.0
    skip_session: float = 0.0
    weekends_only: bool = False
    stop_after_day: int | None = None

    def __post_init__(self) -> None:
        for name in ("skip_day", "skip_session"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability (0..1), got {value}")
        if self.stop_after_day is not None and self.stop_after_day < 0:
            raise ValueError(f"stop_after_day must be >= 0, got {self.stop_after_day}")

    def day_status(self, index: int, day: date, rng: np.random.Generator) -> NonAdherence | None:
        """None when the patient measures on this day, else why not (draws one number)."""
        skip = rng.random() < self.skip_day
        if self.stop_after_day is not None and index >= self.stop_after_day:
            return "stopped"
        if self.weekends_only and day.weekday() < 5:
            return "weekends_only"
        return "skipped" if skip else None

    def skips_session(self, rng: np.random.Generator) -> bool:
        """Whether one session is skipped (draws one number)."""
        return bool(rng.random() < self.skip_session)


@dataclass(frozen=True, slots=True)
class ArtefactDraw:
    movement: bool
    loose_cuff: bool
    failed: bool
    duplicate_press: bool
    duplicate_delay: timedelta


@dataclass(frozen=True, slots=True)
class Artefacts:
    """What goes wrong while measuring blood pressure, per reading.

    ``movement``: the patient moves (status flag, a noisier value); ``loose_cuff``: the cuff is
    too loose (status flag; in ``loose_cuff_nan`` of those the measurement fails and the cuff
    sends NaN); ``duplicate_press``: the patient presses start again and a second measurement
    follows within a minute or so.
    """

    movement: float = 0.0
    loose_cuff: float = 0.0
    loose_cuff_nan: float = 0.5
    duplicate_press: float = 0.0

    def __post_init__(self) -> None:
        for name in ("movement", "loose_cuff", "loose_cuff_nan", "duplicate_press"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability (0..1), got {value}")

    def draw(self, rng: np.random.Generator) -> ArtefactDraw:
        """The artefacts of one reading (draws five numbers)."""
        movement, loose, failed, duplicate, delay = rng.random(5)
        is_loose = loose < self.loose_cuff
        low, high = DUPLICATE_PRESS_DELAY_S
        return ArtefactDraw(
            movement=bool(movement < self.movement),
            loose_cuff=bool(is_loose),
            failed=bool(is_loose and failed < self.loose_cuff_nan),
            duplicate_press=bool(duplicate < self.duplicate_press),
            duplicate_delay=timedelta(seconds=round(low + (high - low) * float(delay))),
        )
