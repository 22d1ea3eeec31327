"""Response models of the API (separate from the storage rows)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from homewatch.wire import ClockStatus, TimeSource
from ingest_server.store import AlertRow, GlucoseReadingRow, ReadingRow

AlertStatus = Literal["open", "acknowledged", "resolved"]


class _Timed(BaseModel):
    """When a reading was taken, and how far to trust that time."""

    reading_id: uuid.UUID
    #: Best estimate of when the measurement was taken (UTC).
    measured_at: datetime
    #: The device's own clock (local wall-clock time, no time zone).
    device_time: datetime | None
    #: When the gateway received the measurement (UTC).
    received_at: datetime
    #: Where measured_at came from: the device's time stamp as given, corrected for its clock,
    #: or the receive time (no usable device time: an estimate).
    time_source: TimeSource
    #: What the gateway knew of the device's clock when it took the reading.
    clock_status: ClockStatus
    #: Device clock minus gateway clock in seconds (positive: device ahead); null when unknown.
    clock_offset_s: float | None
    device_key: str


class Reading(_Timed):
    """A blood-pressure reading."""

    systolic: float | None
    diastolic: float | None
    mean_arterial_pressure: float | None
    #: Beats per minute.
    pulse: float | None
    unit: Literal["mm[Hg]"] = "mm[Hg]"
    flags: list[str]

    @classmethod
    def from_row(cls, row: ReadingRow) -> Reading:
        return cls(
            reading_id=row.reading_id,
            measured_at=row.measured_at,
            device_time=row.device_time,
            received_at=row.received_at,
            time_source=TimeSource(row.time_source),
            clock_status=ClockStatus(row.clock_status),
            clock_offset_s=row.clock_offset_s,
            systolic=row.systolic_mmhg,
            diastolic=row.diastolic_mmhg,
            mean_arterial_pressure=row.mean_arterial_mmhg,
            pulse=row.pulse_bpm,
            flags=row.flags,
            device_key=row.device_key,
        )


class GlucoseContext(BaseModel):
    """What the patient noted with a glucose measurement, in clinical units."""

    meal: str | None = None
    tester: str | None = None
    health: str | None = None
    carbohydrate: str | None = None
    carbohydrate_grams: float | None = None
    exercise_duration_seconds: int | None = None
    exercise_intensity_percent: int | None = None
    medication: str | None = None
    medication_milligrams: float | None = None
    medication_millilitres: float | None = None
    hba1c_percent: float | None = None


class GlucoseReading(_Timed):
    """A glucose reading, in both clinical units."""

    #: The meter's record number (wraps at 65535).
    sequence_number: int
    #: Both null: the meter reported a special value (HI/LO) or no concentration; see
    #: sensor_status for why.
    mmol_per_l: float | None
    mg_per_dl: float | None
    #: The SI unit the meter sent before conversion.
    reported_unit: Literal["kg/L", "mol/L"]
    sample_type: str | None
    sample_location: str | None
    sensor_status: list[str]
    context: GlucoseContext | None
    #: A test of the meter with control solution, not a patient sample: never evaluated.
    control_solution: bool

    @classmethod
    def from_row(cls, row: GlucoseReadingRow) -> GlucoseReading:
        return cls(
            reading_id=row.reading_id,
            measured_at=row.measured_at,
            device_time=row.device_time,
            received_at=row.received_at,
            time_source=TimeSource(row.time_source),
            clock_status=ClockStatus(row.clock_status),
            clock_offset_s=row.clock_offset_s,
            device_key=row.device_key,
            sequence_number=row.sequence_number,
            mmol_per_l=row.mmol_per_l,
            mg_per_dl=row.mg_per_dl,
            reported_unit=row.reported_unit,  # type: ignore[arg-type]
            sample_type=row.sample_type,
            sample_location=row.sample_location,
            sensor_status=row.sensor_status,
            context=None if row.context is None else GlucoseContext.model_validate(row.context),
            control_solution=row.control_solution,
        )


class AlertEvidence(BaseModel):
    reading_ids: list[str]
    statistics: dict[str, Any] = Field(default_factory=dict)


class Alert(BaseModel):
    alert_id: int
    rule_id: str
    rule_version: int
    severity: Literal["info", "warning", "high", "urgent"]
    status: AlertStatus
    title: str
    explanation: str
    evidence: AlertEvidence
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: AlertRow) -> Alert:
        return cls(
            alert_id=row.alert_id,
            rule_id=row.rule_id,
            rule_version=row.rule_version,
            severity=row.severity,  # type: ignore[arg-type]
            status=row.status,  # type: ignore[arg-type]
            title=row.title,
            explanation=row.explanation,
            evidence=AlertEvidence.model_validate(row.evidence),
            occurrences=row.occurrences,
            first_seen_at=row.first_seen_at,
            last_seen_at=row.last_seen_at,
            updated_at=row.updated_at,
        )


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unavailable"]
