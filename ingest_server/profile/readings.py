"""Reading queries beyond the ingest path's own: summaries per time bucket, and the full rows
(with gateway) that the FHIR export needs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ingest_server import db
from ingest_server.db import Connection


class Bucket(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"

    @property
    def length(self) -> timedelta:
        return {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}[
            self.value
        ]


#: Buckets start on local midnight, weeks on Monday (2000-01-03 was one).
_ORIGIN = "2000-01-03 00:00:00"

BP_SUMMARY = """
SELECT date_bin(%(bucket)s::interval, measured_at AT TIME ZONE %(tz)s, %(origin)s::timestamp)
           AT TIME ZONE %(tz)s AS bucket_start,
       count(*)::int AS readings,
       avg(systolic_mmhg)::float8 AS systolic_mean, min(systolic_mmhg)::float8 AS systolic_min,
       max(systolic_mmhg)::float8 AS systolic_max,
       avg(diastolic_mmhg)::float8 AS diastolic_mean, min(diastolic_mmhg)::float8 AS diastolic_min,
       max(diastolic_mmhg)::float8 AS diastolic_max,
       avg(pulse_bpm)::float8 AS pulse_mean
FROM bp_readings
WHERE patient_id = %(patient_id)s AND measured_at >= %(since)s AND measured_at < %(until)s
  AND systolic_mmhg IS NOT NULL AND diastolic_mmhg IS NOT NULL
GROUP BY 1 ORDER BY 1
"""

GLUCOSE_SUMMARY = """
SELECT date_bin(%(bucket)s::interval, measured_at AT TIME ZONE %(tz)s, %(origin)s::timestamp)
           AT TIME ZONE %(tz)s AS bucket_start,
       count(*)::int AS readings,
       avg(mmol_per_l)::float8 AS mmol_per_l_mean, min(mmol_per_l)::float8 AS mmol_per_l_min,
       max(mmol_per_l)::float8 AS mmol_per_l_max,
       count(*) FILTER (WHERE mmol_per_l < 3.9)::int AS below_3_9,
       count(*) FILTER (WHERE mmol_per_l > 10.0)::int AS above_10_0
FROM glucose_readings
WHERE patient_id = %(patient_id)s AND measured_at >= %(since)s AND measured_at < %(until)s
  AND mmol_per_l IS NOT NULL AND NOT control_solution
GROUP BY 1 ORDER BY 1
"""


@dataclass(frozen=True, slots=True)
class BloodPressureBucket:
    bucket_start: datetime
    readings: int
    systolic_mean: float
    systolic_min: float
    systolic_max: float
    diastolic_mean: float
    diastolic_min: float
    diastolic_max: float
    pulse_mean: float | None


@dataclass(frozen=True, slots=True)
class GlucoseBucket:
    bucket_start: datetime
    readings: int
    mmol_per_l_mean: float
    mmol_per_l_min: float
    mmol_per_l_max: float
    below_3_9: int
    above_10_0: int


def _params(
    patient_id: str, since: datetime, until: datetime, bucket: Bucket, tz: str
) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        "since": since,
        "until": until,
        "bucket": bucket.length,
        "tz": tz,
        "origin": _ORIGIN,
    }


async def blood_pressure_summary(
    conn: Connection, patient_id: str, *, since: datetime, until: datetime, bucket: Bucket, tz: str
) -> list[BloodPressureBucket]:
    """Valid blood-pressure readings per bucket of the patient's local time (failed
    measurements, without values, are not averaged)."""
    params = _params(patient_id, since, until, bucket, tz)
    return await db.fetch_all(conn, BP_SUMMARY, params, BloodPressureBucket)


async def glucose_summary(
    conn: Connection, patient_id: str, *, since: datetime, until: datetime, bucket: Bucket, tz: str
) -> list[GlucoseBucket]:
    """Glucose readings per bucket, control-solution tests and HI/LO results left out."""
    params = _params(patient_id, since, until, bucket, tz)
    return await db.fetch_all(conn, GLUCOSE_SUMMARY, params, GlucoseBucket)


# --- full rows for the FHIR export ----------------------------------------------------------------

FHIR_BP = """
SELECT reading_id, measured_at, device_key, gateway_id, systolic_mmhg, diastolic_mmhg,
       mean_arterial_mmhg, pulse_bpm, flags, time_source
FROM bp_readings
WHERE patient_id = %(patient_id)s
  AND (%(since)s::timestamptz IS NULL OR measured_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR measured_at < %(until)s::timestamptz)
ORDER BY measured_at DESC, reading_id
LIMIT %(limit)s
"""

FHIR_GLUCOSE = """
SELECT reading_id, measured_at, device_key, gateway_id, mmol_per_l, mg_per_dl, reported_unit,
       sample_type, sample_location, sensor_status, time_source
FROM glucose_readings
WHERE patient_id = %(patient_id)s AND NOT control_solution
  AND (%(since)s::timestamptz IS NULL OR measured_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR measured_at < %(until)s::timestamptz)
ORDER BY measured_at DESC, reading_id
LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class FhirBloodPressureRow:
    reading_id: uuid.UUID
    measured_at: datetime
    device_key: str
    gateway_id: str
    systolic_mmhg: float | None
    diastolic_mmhg: float | None
    mean_arterial_mmhg: float | None
    pulse_bpm: float | None
    flags: list[str]
    time_source: str


@dataclass(frozen=True, slots=True)
class FhirGlucoseRow:
    reading_id: uuid.UUID
    measured_at: datetime
    device_key: str
    gateway_id: str
    mmol_per_l: float | None
    mg_per_dl: float | None
    reported_unit: str
    sample_type: str | None
    sample_location: str | None
    sensor_status: list[str]
    time_source: str


async def fhir_blood_pressure(
    conn: Connection,
    patient_id: str,
    *,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[FhirBloodPressureRow]:
    params = {"patient_id": patient_id, "since": since, "until": until, "limit": limit}
    return await db.fetch_all(conn, FHIR_BP, params, FhirBloodPressureRow)


async def fhir_glucose(
    conn: Connection,
    patient_id: str,
    *,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[FhirGlucoseRow]:
    """Patient samples only: a control-solution test says nothing about the patient."""
    params = {"patient_id": patient_id, "since": since, "until": until, "limit": limit}
    return await db.fetch_all(conn, FHIR_GLUCOSE, params, FhirGlucoseRow)
