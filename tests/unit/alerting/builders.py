"""Readings and profiles for the alerting tests: small, explicit, reproducible."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from alerting import (
    BloodPressureObservation,
    GlucoseObservation,
    PatientHistory,
    PatientProfile,
)

MOSCOW = ZoneInfo("Europe/Moscow")  # UTC+3, no daylight saving
#: Local midnight that starts day 0 of the generated series.
DAY0 = datetime(2026, 10, 1, tzinfo=MOSCOW)


def at_day(day: float) -> datetime:
    """Local midnight at the start of ``day`` (fractions: later that day), in UTC."""
    return (DAY0 + timedelta(days=day)).astimezone(UTC)


def bp(
    rid: str,
    day: float,
    hour: float,
    sys: float | None,
    dia: float | None,
    pulse: float | None = 70.0,
    flags: tuple[str, ...] = (),
    **extra: object,
) -> BloodPressureObservation:
    return BloodPressureObservation(
        rid, at_day(day) + timedelta(hours=hour), sys, dia, pulse, frozenset(flags), **extra
    )


def glucose(rid: str, day: float, hour: float, mmol: float | None, **extra: object):
    return GlucoseObservation(rid, at_day(day) + timedelta(hours=hour), mmol, **extra)


def bp_series(
    days: int,
    *,
    systolic: float = 128.0,
    diastolic: float = 80.0,
    sd: float = 5.0,
    rise_from_day: int | None = None,
    rise: float = 0.0,
    seed: int = 0,
    prefix: str = "r",
    morning_surge: float = 6.0,
) -> list[BloodPressureObservation]:
    """Morning (07:00, 07:02) and evening (19:00, 19:02) duplicates, local time, every day."""
    rng = np.random.default_rng(seed)
    out = []
    for day in range(days):
        extra = rise if rise_from_day is not None and day >= rise_from_day else 0.0
        for hour, label in ((7.0, "m1"), (7 + 2 / 60, "m2"), (19.0, "e1"), (19 + 2 / 60, "e2")):
            surge = morning_surge if hour < 12 else 0.0
            s = round(systolic + extra + surge + rng.normal(0, sd))
            d = round(diastolic + extra / 2 + surge / 2 + rng.normal(0, sd * 0.7))
            out.append(bp(f"{prefix}{day}-{label}", day, hour, s, d, round(70 + rng.normal(0, 4))))
    return out


def profile(*conditions: str, pid: str = "p1", **kwargs: object) -> PatientProfile:
    kwargs.setdefault("timezone", "Europe/Moscow")
    return PatientProfile(pid, conditions or ("I10",), **kwargs)


def history(bp_readings=(), glucose_readings=(), devices=()) -> PatientHistory:
    return PatientHistory(list(bp_readings), list(glucose_readings), list(devices))
