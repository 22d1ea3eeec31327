"""Response models of the API (separate from the storage rows)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ingest_server.store import AlertRow, ReadingRow

AlertStatus = Literal["open", "acknowledged", "resolved"]


class Reading(BaseModel):
    reading_id: uuid.UUID
    measured_at: datetime
    #: The device's own clock (local wall-clock time, no time zone).
    device_time: datetime | None
    received_at: datetime
    systolic: float | None
    diastolic: float | None
    mean_arterial_pressure: float | None
    #: Beats per minute.
    pulse: float | None
    unit: Literal["mm[Hg]"] = "mm[Hg]"
    flags: list[str]
    device_key: str

    @classmethod
    def from_row(cls, row: ReadingRow) -> Reading:
        return cls(
            reading_id=row.reading_id,
            measured_at=row.measured_at,
            device_time=row.device_time,
            received_at=row.received_at,
            systolic=row.systolic_mmhg,
            diastolic=row.diastolic_mmhg,
            mean_arterial_pressure=row.mean_arterial_mmhg,
            pulse=row.pulse_bpm,
            flags=row.flags,
            device_key=row.device_key,
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
