"""Virtual patients who measure their blood pressure at home on a schedule.

Physiology is deliberately simple here (personal baseline, morning surge, within-person noise
with SD ≈ 5 mmHg, crisis episodes re-measured after 5 minutes); the richer scenarios of the
simulator issue grow from this. Everything is a pure function of the patient and the seed, so
the same seed gives the same readings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

import numpy as np

from gateway.codec import BloodPressureMeasurement, MeasurementStatus

log = logging.getLogger(__name__)

#: Morning and evening duplicates, two minutes apart (ESH home-measurement protocol).
DEFAULT_SCHEDULE = (time(7, 0), time(7, 2), time(19, 0), time(19, 2))


@dataclass(frozen=True, slots=True)
class BloodPressureBaseline:
    systolic: float
    diastolic: float
    pulse: float
    within_person_sd: float = 5.0
    #: Extra systolic pressure in the morning hours (06:00-10:00).
    morning_surge: float = 6.0


@dataclass(frozen=True, slots=True)
class CrisisEpisode:
    """At ``at`` the patient measures a crisis value, and again ``remeasure_after`` later."""

    at: datetime
    systolic: float
    diastolic: float
    remeasure_after: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Measurement:
    at: datetime  # UTC, as the cuff's clock shows it
    systolic: float
    diastolic: float
    pulse: float
    event: str = "scheduled"

    def encode(self) -> bytes:
        """The Blood Pressure Measurement a cuff would indicate (mmHg, integers, time stamp)."""
        mean_arterial = round(self.diastolic + (self.systolic - self.diastolic) / 3)
        return bytes(
            BloodPressureMeasurement.from_values(
                self.systolic,
                self.diastolic,
                mean_arterial,
                time_stamp=self.at.replace(tzinfo=None),
                pulse_rate=self.pulse,
                status=MeasurementStatus(),
            )
        )


@dataclass(frozen=True)
class VirtualPatient:
    patient_id: str
    display_name: str
    baseline: BloodPressureBaseline
    crises: tuple[CrisisEpisode, ...] = ()
    schedule: tuple[time, ...] = DEFAULT_SCHEDULE
    seed: int = 0
    conditions: tuple[str, ...] = field(default=("I10",))

    def measurements(self, start: datetime, end: datetime | None = None) -> Iterator[Measurement]:
        """Every measurement in [start, end) (forever without ``end``), in time order."""
        rng = np.random.default_rng(self.seed)
        day = start.date()
        while True:
            midnight = datetime.combine(day, time(0), start.tzinfo)
            if end is not None and midnight >= end:
                return
            next_midnight = midnight + timedelta(days=1)
            events = [*self._scheduled(midnight), *self._crisis_events(midnight, next_midnight)]
            for at, kind, values in sorted(events, key=lambda e: e[0]):
                if at < start or (end is not None and at >= end):
                    continue
                systolic, diastolic = values or self._physiological(at, rng)
                pulse = float(round(self.baseline.pulse + rng.normal(0, 4)))
                yield Measurement(at, systolic, diastolic, pulse, kind)
            day += timedelta(days=1)

    def _scheduled(self, midnight: datetime) -> Iterator[tuple[datetime, str, None]]:
        for t in self.schedule:
            yield midnight.replace(hour=t.hour, minute=t.minute), "scheduled", None

    def _crisis_events(
        self, start: datetime, end: datetime
    ) -> Iterator[tuple[datetime, str, tuple[float, float]]]:
        for c in self.crises:
            for at, drop in ((c.at, 0), (c.at + c.remeasure_after, 4)):
                if start <= at < end:
                    yield at, "crisis", (float(c.systolic - drop), float(c.diastolic - drop // 2))

    def _physiological(self, at: datetime, rng: np.random.Generator) -> tuple[float, float]:
        b = self.baseline
        surge = b.morning_surge if 6 <= at.hour < 10 else 0.0
        systolic = b.systolic + surge + rng.normal(0, b.within_person_sd)
        diastolic = b.diastolic + surge / 2 + rng.normal(0, b.within_person_sd * 0.7)
        return float(round(systolic)), float(round(min(diastolic, systolic - 20)))
