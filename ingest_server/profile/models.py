"""The profile's vocabularies (mirrored by CHECK constraints in migration 0004) and its rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any


class IdentifierSystem(StrEnum):
    NATIONAL_INSURANCE_NUMBER = "national_insurance_number"
    HEALTH_INSURANCE_POLICY = "health_insurance_policy"
    LOCAL = "local"


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


class ContactKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    ADDRESS = "address"


class ContactUse(StrEnum):
    HOME = "home"
    WORK = "work"
    MOBILE = "mobile"


class CareRole(StrEnum):
    TREATING = "treating"
    NURSE = "nurse"
    CONSULTANT = "consultant"
    RESPONSIBLE_ORGANISATION = "responsible_organisation"


class GranteeKind(StrEnum):
    ORGANISATION = "organisation"
    CLINICIAN = "clinician"


class ConsentPurpose(StrEnum):
    #: Monitoring and treatment by the care team: what clinical reads need.
    TREATMENT = "treatment"
    #: Research: recorded, and never enough for a clinical read.
    RESEARCH = "research"


class ConsentState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class ClinicalStatus(StrEnum):
    ACTIVE = "active"
    REMISSION = "remission"
    RESOLVED = "resolved"


class RiskFactorCode(StrEnum):
    SMOKING = "smoking"
    OBESITY = "obesity"
    PHYSICAL_INACTIVITY = "physical_inactivity"
    DYSLIPIDAEMIA = "dyslipidaemia"
    FAMILY_HISTORY_CVD = "family_history_cvd"
    ALCOHOL = "alcohol"
    CHRONIC_KIDNEY_DISEASE = "chronic_kidney_disease"
    OTHER = "other"


class EntryKind(StrEnum):
    NOTE = "note"
    SYMPTOM = "symptom"


class Symptom(StrEnum):
    HEADACHE = "headache"
    DIZZINESS = "dizziness"
    CHEST_PAIN = "chest_pain"
    SHORTNESS_OF_BREATH = "shortness_of_breath"
    PALPITATIONS = "palpitations"
    BLURRED_VISION = "blurred_vision"
    NAUSEA = "nausea"
    THIRST = "thirst"
    FATIGUE = "fatigue"
    HYPOGLYCAEMIA = "hypoglycaemia"
    OTHER = "other"


class ScheduleMetric(StrEnum):
    BLOOD_PRESSURE_PER_WEEK = "blood_pressure_per_week"
    GLUCOSE_PER_WEEK = "glucose_per_week"


class DeviceKind(StrEnum):
    BLOOD_PRESSURE = "blood_pressure"
    GLUCOSE = "glucose"


class AlertSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        return list(AlertSeverity).index(self)


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    SNOOZE = "snooze"


#: ``CASE`` expression ranking a severity column in SQL (the order of ``AlertSeverity``).
SEVERITY_RANK_SQL = (
    "CASE {col} WHEN 'urgent' THEN 3 WHEN 'high' THEN 2 WHEN 'warning' THEN 1 ELSE 0 END"
)


# --- rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatientRow:
    patient_id: str
    display_name: str
    given_name: str | None
    family_name: str | None
    birth_date: date | None
    gender: str | None
    timezone: str
    created_at: datetime
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class IdentifierRow:
    identifier_id: int
    system: str
    value: str
    assigner: str | None


@dataclass(frozen=True, slots=True)
class ContactRow:
    contact_id: int
    kind: str
    value: str
    use: str
    name: str | None
    relationship: str | None


@dataclass(frozen=True, slots=True)
class OrganisationRow:
    organisation_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ClinicianRow:
    clinician_id: str
    display_name: str
    organisation_id: str
    profession: str | None
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CareTeamMemberRow:
    member_id: int
    patient_id: str
    organisation_id: str
    organisation_name: str
    clinician_id: str | None
    clinician_name: str | None
    role: str
    added_at: datetime
    added_by: str
    removed_at: datetime | None
    removed_by: str | None


@dataclass(frozen=True, slots=True)
class ConsentRow:
    consent_id: int
    patient_id: str
    grantee_kind: str
    grantee_id: str
    purpose: str
    granted_at: datetime
    valid_until: datetime | None
    granted_by: str
    revoked_at: datetime | None
    revoked_by: str | None
    state: str


@dataclass(frozen=True, slots=True)
class ConsentEventRow:
    event_id: int
    consent_id: int
    event: str
    at: datetime
    actor: str


@dataclass(frozen=True, slots=True)
class ConditionRow:
    condition_id: int
    icd10_code: str
    display: str
    programme: str | None
    onset_date: date | None
    clinical_status: str
    recorded_at: datetime
    recorded_by: str


@dataclass(frozen=True, slots=True)
class TargetRow:
    target_id: int
    name: str
    value: float | None
    unit: str
    note: str | None
    set_by: str
    set_at: datetime


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    schedule_id: int
    metric: str
    per_week: float | None
    note: str | None
    set_by: str
    set_at: datetime


@dataclass(frozen=True, slots=True)
class MedicationRow:
    medication_id: int
    name: str
    atc_code: str | None
    dose: str | None
    frequency: str | None
    start_date: date | None
    end_date: date | None
    prescribed_by: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class RiskFactorRow:
    risk_factor_id: int
    code: str
    note: str | None
    recorded_at: datetime
    recorded_by: str


@dataclass(frozen=True, slots=True)
class EntryRow:
    entry_id: int
    kind: str
    symptom: str | None
    text: str
    occurred_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ClinicianNoteRow:
    note_id: int
    clinician_id: str
    alert_id: int | None
    text: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeviceRow:
    device_key: str
    kind: str | None
    label: str | None
    manufacturer: str | None
    model: str | None
    serial_number: str | None
    firmware_revision: str | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    patient_id: str | None  # bound to now


@dataclass(frozen=True, slots=True)
class BindingRow:
    binding_id: int
    device_key: str
    patient_id: str
    valid_from: datetime
    valid_to: datetime | None
    ended_by: str | None
    end_reason: str | None


@dataclass(frozen=True, slots=True)
class GatewayRow:
    gateway_id: str
    patient_id: str | None
    label: str | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class LifecycleAlertRow:
    """An alert with its lifecycle columns and the patient it is about."""

    alert_id: int
    patient_id: str
    patient_name: str
    rule_id: str
    rule_version: int
    severity: str
    status: str
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


@dataclass(frozen=True, slots=True)
class AlertEventRow:
    event_id: int
    alert_id: int
    action: str
    from_status: str
    to_status: str
    snoozed_until: datetime | None
    note: str | None
    actor: str
    at: datetime
