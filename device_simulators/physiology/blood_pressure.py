"""Blood pressure of one virtual patient: what it truly is at a moment, and what a cuff reads.

The true (noise-free) pressure is the patient's baseline plus, in this order:

* a circadian rhythm in local time: a morning surge peaking around 08:00 and a night dip;
* the medication the patient is on (``medication_effect``, negative lowers) and changes to it
  (``MedicationChange``: a new drug or a stopped one, reaching its full effect over a few days);
  the effect is a little weaker at the trough before the morning dose;
* slow deteriorations (``Deterioration``: e.g. +1 mmHg/day for three weeks, then it stays).

A reading is the true pressure plus within-person noise (SD ~5 mmHg systolic, 0.7 of that
diastolic: ARC Oxford home-BP data, shared/clinical/RULES.md), rounded to whole mmHg as cuffs
report. Crises are episodes of their own (``Crisis``): the pressure the patient measures then is
the episode's, not the baseline's. Recurring irregular pulse (``IrregularPulse``) flags a share of
the readings in its window and makes the pulse more variable. Diastolic pressure is always at
least 20 mmHg below systolic, as in a living patient.

Everything here is pure: the random numbers come from the caller's ``numpy`` Generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

#: Hour (local, decimal) of the morning surge's peak and its width (SD, hours).
SURGE_PEAK_HOUR = 8.0
SURGE_WIDTH_HOURS = 1.5
#: Hour of the deepest night dip and its width.
DIP_HOUR = 3.0
DIP_WIDTH_HOURS = 1.8
#: Diastolic pressure follows systolic changes at this ratio (surge, medication, deterioration).
DIASTOLIC_SHARE = 0.5
#: Within-person diastolic noise relative to systolic noise.
DIASTOLIC_NOISE_SHARE = 0.7
#: Pulse noise (beats per minute, SD): regular and irregular rhythm.
PULSE_SD = 4.0
IRREGULAR_PULSE_SD = 12.0
#: Diastolic stays at least this far below systolic.
MIN_PULSE_PRESSURE = 20.0


@dataclass(frozen=True, slots=True)
class BloodPressureProfile:
    """A patient's own blood pressure (mmHg) and pulse (beats per minute)."""

    systolic: float
    diastolic: float
    pulse: float
    within_person_sd: float = 5.0
    #: Extra systolic pressure at the peak of the morning surge (about 08:00 local).
    morning_surge: float = 8.0
    #: Systolic fall at the deepest point of the night (about 03:00 local).
    night_dip: float = 10.0
    #: Systolic effect of the medication taken from the start (negative lowers).
    medication_effect: float = 0.0

    def __post_init__(self) -> None:
        for name in ("systolic", "diastolic", "pulse"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.within_person_sd < 0:
            raise ValueError(f"within_person_sd must be >= 0, got {self.within_person_sd}")


@dataclass(frozen=True, slots=True)
class Deterioration:
    """From ``start`` the systolic pressure rises ``slope_per_day`` mmHg a day for ``days``
    days, then stays there (diastolic by half as much)."""

    start: datetime
    slope_per_day: float
    days: float

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    def offset(self, at: datetime) -> float:
        elapsed = (at - self.start).total_seconds() / 86400
        return self.slope_per_day * min(max(elapsed, 0.0), self.days)


@dataclass(frozen=True, slots=True)
class MedicationChange:
    """At ``at`` a drug is started (``effect`` < 0) or stopped (``effect`` > 0: the lowering
    is lost); the systolic change reaches ``effect`` linearly over ``onset_days``."""

    at: datetime
    effect: float
    onset_days: float = 5.0

    def offset(self, at: datetime) -> float:
        elapsed = (at - self.at).total_seconds() / 86400
        if elapsed <= 0:
            return 0.0
        if self.onset_days <= 0:
            return self.effect
        return self.effect * min(elapsed / self.onset_days, 1.0)


@dataclass(frozen=True, slots=True)
class Crisis:
    """A hypertensive crisis: at ``at`` the patient measures ``systolic``/``diastolic`` (true
    values, > 180 and/or > 120) and, as the guideline asks, again ``remeasure_after`` later,
    when the pressure is still about as high (a few mmHg lower)."""

    at: datetime
    systolic: float
    diastolic: float
    remeasure_after: timedelta = timedelta(minutes=5)
    #: How far the pressure has come down by the re-measurement (systolic; diastolic half).
    remeasure_drop: float = 4.0

    @property
    def remeasure_at(self) -> datetime:
        return self.at + self.remeasure_after

    def true_values(self, remeasure: bool) -> tuple[float, float]:
        if not remeasure:
            return self.systolic, self.diastolic
        return (
            self.systolic - self.remeasure_drop,
            self.diastolic - self.remeasure_drop * DIASTOLIC_SHARE,
        )


@dataclass(frozen=True, slots=True)
class IrregularPulse:
    """From ``start`` to ``end`` a share of the readings (``share``, 0..1) show an irregular
    pulse: recurring, so a possible arrhythmia rather than noise."""

    start: datetime
    end: datetime
    share: float = 0.4

    def active(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class BloodPressureSample:
    """One cuff reading before encoding: whole mmHg, with the true values it came from."""

    systolic: float
    diastolic: float
    pulse: float
    irregular_pulse: bool
    true_systolic: float
    true_diastolic: float


@dataclass(frozen=True)
class BloodPressureModel:
    """A patient's blood pressure over time (profile plus the episodes that change it)."""

    profile: BloodPressureProfile
    deteriorations: tuple[Deterioration, ...] = ()
    medication_changes: tuple[MedicationChange, ...] = ()
    irregular_pulse: tuple[IrregularPulse, ...] = ()

    def true_pressure(self, at: datetime, local_hour: float) -> tuple[float, float]:
        """True systolic and diastolic at ``at`` (aware) whose local hour is ``local_hour``."""
        p = self.profile
        circadian = p.morning_surge * _bump(local_hour, SURGE_PEAK_HOUR, SURGE_WIDTH_HOURS)
        circadian -= p.night_dip * _bump(local_hour, DIP_HOUR, DIP_WIDTH_HOURS)
        medication = p.medication_effect * _dose_cycle(local_hour)
        medication += sum(change.offset(at) for change in self.medication_changes)
        worsening = sum(d.offset(at) for d in self.deteriorations)
        shift = circadian + medication + worsening
        return p.systolic + shift, p.diastolic + shift * DIASTOLIC_SHARE

    def irregular_share(self, at: datetime) -> float:
        return max((e.share for e in self.irregular_pulse if e.active(at)), default=0.0)

    def sample(
        self,
        at: datetime,
        local_hour: float,
        rng: np.random.Generator,
        *,
        true_values: tuple[float, float] | None = None,
        sd: float | None = None,
        extra_sd: float = 0.0,
    ) -> BloodPressureSample:
        """A cuff reading at ``at``: true pressure (or ``true_values``, e.g. a crisis) plus
        within-person noise (or ``sd``), ``extra_sd`` more (e.g. a patient who moved)."""
        true_sys, true_dia = true_values or self.true_pressure(at, local_hour)
        base_sd = self.profile.within_person_sd if sd is None else sd
        sd = math.hypot(base_sd, extra_sd)
        # Always draw the same numbers in the same order: the stream stays aligned.
        noise_sys, noise_dia, noise_pulse, irregular_draw = (
            rng.normal(0.0, 1.0),
            rng.normal(0.0, 1.0),
            rng.normal(0.0, 1.0),
            rng.random(),
        )
        irregular = irregular_draw < self.irregular_share(at)
        systolic = float(round(true_sys + noise_sys * sd))
        diastolic = float(round(true_dia + noise_dia * sd * DIASTOLIC_NOISE_SHARE))
        diastolic = min(diastolic, systolic - MIN_PULSE_PRESSURE)
        pulse_sd = IRREGULAR_PULSE_SD if irregular else PULSE_SD
        pulse = float(round(max(self.profile.pulse + noise_pulse * pulse_sd, 30.0)))
        return BloodPressureSample(
            systolic, diastolic, pulse, irregular, round(true_sys, 2), round(true_dia, 2)
        )


def _bump(hour: float, centre: float, width: float) -> float:
    """A Gaussian bump on the 24-hour circle (1 at ``centre``)."""
    distance = (hour - centre + 12.0) % 24.0 - 12.0
    return math.exp(-0.5 * (distance / width) ** 2)


def _dose_cycle(hour: float) -> float:
    """How much of a once-daily (morning) drug's effect is present: 1 at the peak about four
    hours after the dose, 0.7 at the trough just before it (trough/peak ratio of long-acting
    antihypertensives)."""
    return 0.85 + 0.15 * math.cos(2 * math.pi * (hour - 12.0) / 24.0)
