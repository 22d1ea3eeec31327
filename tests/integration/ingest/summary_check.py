"""What the daily summaries must say, computed in Python from the readings stored, with the
rules' own definitions (alerting.plausibility, alerting.summaries), for comparison with bp_daily
and glucose_daily on either storage path."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import alerting
from alerting.plausibility import GLUCOSE_RANGE_MMOL_L, blood_pressure_problem
from alerting.summaries.blood_pressure import EVENING_HOURS, MORNING_HOURS
from tests.integration.ingest.ingest_support import query


def _day_start(t: datetime, tz: ZoneInfo) -> datetime:
    local = t.astimezone(tz)
    return datetime.combine(local.date(), time(0), tzinfo=tz)


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def expected_bp_daily(
    database_url: str, patient_id: str, tz: str
) -> dict[datetime, dict[str, Any]]:
    zone = ZoneInfo(tz)
    rows = query(
        database_url,
        "SELECT reading_id::text, measured_at, systolic_mmhg, diastolic_mmhg, pulse_bpm, flags"
        " FROM bp_readings WHERE patient_id = %s",
        (patient_id,),
    )
    days: dict[datetime, list[Any]] = defaultdict(list)
    for row in rows:
        days[_day_start(row[1], zone)].append(row)
    out = {}
    for day, readings in days.items():
        usable = [
            r
            for r in readings
            if blood_pressure_problem(
                alerting.BloodPressureObservation(
                    reading_id=r[0], measured_at=r[1], systolic=r[2], diastolic=r[3], pulse=r[4]
                )
            )
            is None
        ]
        morning = [r for r in usable if r[1].astimezone(zone).hour in MORNING_HOURS]
        evening = [r for r in usable if r[1].astimezone(zone).hour in EVENING_HOURS]
        out[day] = {
            "readings": len(readings),
            "usable_readings": len(usable),
            "mean_systolic_mmhg": _mean([r[2] for r in usable]),
            "mean_diastolic_mmhg": _mean([r[3] for r in usable]),
            "mean_pulse_bpm": _mean([r[4] for r in usable if r[4] is not None]),
            "morning_readings": len(morning),
            "morning_systolic_mmhg": _mean([r[2] for r in morning]),
            "morning_diastolic_mmhg": _mean([r[3] for r in morning]),
            "evening_readings": len(evening),
            "evening_systolic_mmhg": _mean([r[2] for r in evening]),
            "evening_diastolic_mmhg": _mean([r[3] for r in evening]),
        }
    return out


def expected_glucose_daily(
    database_url: str, patient_id: str, tz: str
) -> dict[datetime, dict[str, Any]]:
    zone = ZoneInfo(tz)
    rows = query(
        database_url,
        "SELECT measured_at, mmol_per_l, control_solution FROM glucose_readings"
        " WHERE patient_id = %s AND NOT control_solution",
        (patient_id,),
    )
    days: dict[datetime, list[Any]] = defaultdict(list)
    for row in rows:
        days[_day_start(row[0], zone)].append(row)
    low, high = GLUCOSE_RANGE_MMOL_L
    out = {}
    for day, readings in days.items():
        values = [r[1] for r in readings if r[1] is not None and low <= r[1] <= high]
        out[day] = {
            "readings": len(readings),
            "usable_readings": len(values),
            "mean_mmol_per_l": _mean(values),
            "sd_mmol_per_l": statistics.stdev(values) if len(values) > 1 else None,
            "min_mmol_per_l": min(values) if values else None,
            "max_mmol_per_l": max(values) if values else None,
            "below_3_0": sum(v < 3.0 for v in values),
            "from_3_0_below_3_9": sum(3.0 <= v < 3.9 for v in values),
            "in_range_3_9_to_10_0": sum(3.9 <= v <= 10.0 for v in values),
            "above_10_0_to_13_9": sum(10.0 < v <= 13.9 for v in values),
            "above_13_9": sum(v > 13.9 for v in values),
        }
    return out


def stored_daily(database_url: str, view: str, patient_id: str) -> dict[datetime, dict[str, Any]]:
    rows = query(database_url, f"SELECT * FROM {view} WHERE patient_id = %s", (patient_id,))
    columns = [
        c[0]
        for c in query(
            database_url,
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped ORDER BY attnum",
            (view,),
        )
    ]
    out = {}
    for row in rows:
        record = dict(zip(columns, row, strict=True))
        day = record.pop("day_start")
        record.pop("patient_id")
        out[day] = record
    return out


def assert_same(
    stored: dict[datetime, dict[str, Any]], expected: dict[datetime, dict[str, Any]]
) -> None:
    assert sorted(stored) == sorted(expected), (sorted(stored), sorted(expected))
    for day, want in expected.items():
        got = stored[day]
        for key, value in want.items():
            if value is None or got[key] is None:
                assert got[key] == value, (day, key, got[key], value)
            else:
                assert math.isclose(float(got[key]), float(value), rel_tol=1e-6, abs_tol=1e-6), (
                    day,
                    key,
                    got[key],
                    value,
                )
