"""Models of the alert lifecycle, the inbox, the clinician's patient list and reading summaries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ingest_server.api.schemas.common import LongText
from ingest_server.profile.models import AlertAction, AlertSeverity, AlertStatus


class LifecycleAlert(BaseModel):
    """An alert with the patient it is about and where it stands in its lifecycle."""

    model_config = ConfigDict(from_attributes=True)

    alert_id: int
    patient_id: str
    patient_name: str
    rule_id: str
    rule_version: int
    severity: AlertSeverity
    status: AlertStatus
    title: str
    explanation: str
    evidence: dict[str, Any]
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    snoozed_until: datetime | None
    snoozed_by: str | None
    last_note: str | None


class AlertEvent(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    event_id: int
    action: AlertAction
    from_status: AlertStatus
    to_status: AlertStatus
    snoozed_until: datetime | None
    note: str | None
    actor: str
    at: datetime


class AlertDetail(BaseModel):
    alert: LifecycleAlert
    history: list[AlertEvent]


class AlertNoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: LongText | None = None


class SnoozeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Until when the alert stays out of the inbox: in the future, at most 30 days ahead.
    until: AwareDatetime
    note: LongText | None = None


class PatientStatus(BaseModel):
    """One line of the clinician's patient list."""

    patient_id: str
    display_name: str
    #: The most severe unresolved alert (None: none).
    worst_open_severity: AlertSeverity | None
    open_alerts: int
    last_reading_at: datetime | None
    #: Share (0..1) of the readings the schedule asked for in the last 7 days that were taken;
    #: None when nothing is prescribed.
    adherence_7d: float | None
    programmes: list[str]


class BloodPressureBucket(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    bucket_start: datetime
    readings: int
    systolic_mean: float
    systolic_min: float
    systolic_max: float
    diastolic_mean: float
    diastolic_min: float
    diastolic_max: float
    pulse_mean: float | None


class GlucoseBucket(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    bucket_start: datetime
    readings: int
    mmol_per_l_mean: float
    mmol_per_l_min: float
    mmol_per_l_max: float
    below_3_9: Annotated[int, Field(description="readings below 3.9 mmol/L")]
    above_10_0: Annotated[int, Field(description="readings above 10.0 mmol/L")]


class ReadingSummary(BaseModel):
    """Readings per bucket of the patient's local time (their time zone)."""

    timezone: str
    bucket: str
    blood_pressure: list[BloodPressureBucket]
    glucose: list[GlucoseBucket]
