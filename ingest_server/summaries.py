"""Daily summaries of a patient's readings, as stored: ``bp_daily`` and ``glucose_daily``.

Native PostgreSQL keeps them as tables, brought up to date by the ingest path in the transaction
that stores the readings; TimescaleDB keeps them as real-time continuous aggregates. Same columns
either way (migration 0003 says what each one means); this module reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ingest_server import db
from ingest_server.db import Connection

DAILY_BLOOD_PRESSURE = """
SELECT patient_id, day_start, readings, usable_readings, mean_systolic_mmhg,
       mean_diastolic_mmhg, mean_pulse_bpm, morning_readings, morning_systolic_mmhg,
       morning_diastolic_mmhg, evening_readings, evening_systolic_mmhg, evening_diastolic_mmhg
FROM bp_daily
WHERE patient_id = %(patient_id)s
  AND (%(since)s::timestamptz IS NULL OR day_start >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR day_start < %(until)s::timestamptz)
ORDER BY day_start
"""

DAILY_GLUCOSE = """
SELECT patient_id, day_start, readings, usable_readings, mean_mmol_per_l, sd_mmol_per_l,
       min_mmol_per_l, max_mmol_per_l, below_3_0, from_3_0_below_3_9, in_range_3_9_to_10_0,
       above_10_0_to_13_9, above_13_9
FROM glucose_daily
WHERE patient_id = %(patient_id)s
  AND (%(since)s::timestamptz IS NULL OR day_start >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR day_start < %(until)s::timestamptz)
ORDER BY day_start
"""


@dataclass(frozen=True, slots=True)
class DailyBloodPressure:
    """One local day (of the deployment's summary time zone) of a patient's BP readings.

    Means are over the plausible readings only; morning is 04:00-11:59 local, evening
    16:00-23:59 (alerting.summaries.blood_pressure).
    """

    patient_id: str
    day_start: datetime
    readings: int
    usable_readings: int
    mean_systolic_mmhg: float | None
    mean_diastolic_mmhg: float | None
    mean_pulse_bpm: float | None
    morning_readings: int
    morning_systolic_mmhg: float | None
    morning_diastolic_mmhg: float | None
    evening_readings: int
    evening_systolic_mmhg: float | None
    evening_diastolic_mmhg: float | None


@dataclass(frozen=True, slots=True)
class DailyGlucose:
    """One local day of a patient's glucose readings (control-solution tests left out).

    Statistics over the plausible values (mmol/L); the range counts follow the consensus ranges
    of alerting.summaries.glucose. ``sd_mmol_per_l`` is the sample SD, None for one reading.
    """

    patient_id: str
    day_start: datetime
    readings: int
    usable_readings: int
    mean_mmol_per_l: float | None
    sd_mmol_per_l: float | None
    min_mmol_per_l: float | None
    max_mmol_per_l: float | None
    below_3_0: int
    from_3_0_below_3_9: int
    in_range_3_9_to_10_0: int
    above_10_0_to_13_9: int
    above_13_9: int

    @property
    def cv_percent(self) -> float | None:
        """Coefficient of variation (%), None when it is not defined."""
        if self.sd_mmol_per_l is None or not self.mean_mmol_per_l:
            return None
        return 100.0 * self.sd_mmol_per_l / self.mean_mmol_per_l


async def daily_blood_pressure(
    conn: Connection,
    patient_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[DailyBloodPressure]:
    """The patient's days with ``since <= day_start < until``, oldest first."""
    params = {"patient_id": patient_id, "since": since, "until": until}
    return await db.fetch_all(conn, DAILY_BLOOD_PRESSURE, params, DailyBloodPressure)


async def daily_glucose(
    conn: Connection,
    patient_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[DailyGlucose]:
    """The patient's days with ``since <= day_start < until``, oldest first."""
    params = {"patient_id": patient_id, "since": since, "until": until}
    return await db.fetch_all(conn, DAILY_GLUCOSE, params, DailyGlucose)
