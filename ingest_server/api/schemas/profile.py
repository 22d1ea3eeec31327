"""Models of the patient profile: demographics, identifiers, contacts, clinical parts, care
team, consents, devices."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from ingest_server.api.schemas.common import Id, LongText, ShortText
from ingest_server.profile.models import (
    CareRole,
    ClinicalStatus,
    ConsentPurpose,
    ConsentState,
    ContactKind,
    ContactUse,
    EntryKind,
    Gender,
    GranteeKind,
    IdentifierSystem,
    RiskFactorCode,
    ScheduleMetric,
    Symptom,
)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- identity -------------------------------------------------------------------------------------


class IdentifierIn(_In):
    system: IdentifierSystem
    value: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9 ./-]+$")]
    assigner: ShortText | None = None


class Identifier(_Out):
    identifier_id: int
    system: IdentifierSystem
    value: str
    assigner: str | None


class ContactIn(_In):
    kind: ContactKind
    value: ShortText
    use: ContactUse = ContactUse.HOME
    #: None: the patient's own contact; otherwise the person's name (e.g. next of kin).
    name: ShortText | None = None
    relationship: ShortText | None = None


class Contact(_Out):
    contact_id: int
    kind: ContactKind
    value: str
    use: ContactUse
    name: str | None
    relationship: str | None


class PatientIn(_In):
    """An admin registers a patient: identity, demographics, contacts."""

    display_name: ShortText
    given_name: ShortText | None = None
    family_name: ShortText | None = None
    birth_date: date | None = None
    gender: Gender | None = None
    #: IANA time zone of the patient's home (their days, mornings and evenings).
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "UTC"
    identifiers: Annotated[list[IdentifierIn], Field(max_length=10)] = []
    contacts: Annotated[list[ContactIn], Field(max_length=20)] = []

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("birth_date")
    @classmethod
    def _plausible_birth(cls, value: date | None) -> date | None:
        if value is not None and not date(1900, 1, 1) <= value <= date.today():
            raise ValueError("birth date must be between 1900-01-01 and today")
        return value


class Demographics(_Out):
    patient_id: str
    display_name: str
    given_name: str | None
    family_name: str | None
    birth_date: date | None
    gender: Gender | None
    timezone: str
    created_at: datetime
    updated_at: datetime | None


class PatientSummary(_Out):
    patient_id: str
    display_name: str


# --- clinical -------------------------------------------------------------------------------------


class ConditionIn(_In):
    icd10_code: Annotated[str, Field(pattern=r"^[A-Za-z][0-9]{2}(\.[0-9A-Za-z]{1,4})?$")]
    display: ShortText
    onset_date: date | None = None
    clinical_status: ClinicalStatus = ClinicalStatus.ACTIVE


class Condition(_Out):
    condition_id: int
    icd10_code: str
    display: str
    #: The dispensary programme the code puts the patient in (None: none of ours).
    programme: str | None
    onset_date: date | None
    clinical_status: ClinicalStatus
    recorded_at: datetime
    recorded_by: str


class TargetIn(_In):
    """A per-patient target (``GET /targets/catalogue`` lists names, units and ranges); value
    null returns to the programme's default."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
    value: Annotated[float, Field(allow_inf_nan=False)] | None
    note: LongText | None = None


class ScheduleIn(_In):
    """The patient's own measurement schedule for one metric; per_week null returns to the
    programme's default, 0 means not prescribed."""

    metric: ScheduleMetric
    per_week: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] | None
    note: LongText | None = None


class Target(_Out):
    target_id: int
    name: str
    value: float | None
    unit: str
    note: str | None
    set_by: str
    set_at: datetime


class ScheduleEntry(_Out):
    schedule_id: int
    metric: ScheduleMetric
    per_week: float | None
    note: str | None
    set_by: str
    set_at: datetime


class TargetSpec(_Out):
    name: str
    unit: str
    low: float
    high: float
    meaning: str
    rule_id: str


class Programmes(BaseModel):
    """What the rules see: programmes from the conditions, the schedule in force (programme
    defaults with the patient's own over them), the targets in force, and their history."""

    programmes: list[str]
    schedule_per_week: dict[str, float]
    targets: list[Target]
    schedule: list[ScheduleEntry]
    history: list[Target]


class MedicationIn(_In):
    name: ShortText
    atc_code: Annotated[str, Field(pattern=r"^[A-Z][0-9]{2}[A-Z]{0,2}[0-9]{0,2}$")] | None = None
    dose: ShortText | None = None
    frequency: ShortText | None = None
    start_date: date | None = None
    end_date: date | None = None


class Medication(_Out):
    medication_id: int
    name: str
    atc_code: str | None
    dose: str | None
    frequency: str | None
    start_date: date | None
    end_date: date | None
    prescribed_by: str
    recorded_at: datetime


class RiskFactorIn(_In):
    code: RiskFactorCode
    note: LongText | None = None


class RiskFactor(_Out):
    risk_factor_id: int
    code: RiskFactorCode
    note: str | None
    recorded_at: datetime
    recorded_by: str


class EntryIn(_In):
    """What a patient writes: a note, or a symptom (then ``symptom`` is required)."""

    kind: EntryKind
    symptom: Symptom | None = None
    text: LongText
    occurred_at: AwareDatetime | None = None


class Entry(_Out):
    entry_id: int
    kind: EntryKind
    symptom: Symptom | None
    text: str
    occurred_at: datetime | None
    created_at: datetime


class ClinicianNoteIn(_In):
    text: LongText
    #: The alert the note is about, if any (must be the patient's).
    alert_id: Annotated[int, Field(ge=1, le=2**62)] | None = None


class ClinicianNote(_Out):
    note_id: int
    clinician_id: str
    alert_id: int | None
    text: str
    created_at: datetime


# --- care team and consent ------------------------------------------------------------------------


class CareTeamMemberIn(_In):
    """An organisation, or a clinician (whose organisation is then theirs)."""

    organisation_id: Id | None = None
    clinician_id: Id | None = None
    role: CareRole = CareRole.TREATING


class CareTeamMember(_Out):
    member_id: int
    organisation_id: str
    organisation_name: str
    clinician_id: str | None
    clinician_name: str | None
    role: CareRole
    added_at: datetime
    added_by: str
    removed_at: datetime | None
    removed_by: str | None


class ConsentIn(_In):
    grantee_kind: GranteeKind
    grantee_id: Id
    purpose: ConsentPurpose = ConsentPurpose.TREATMENT
    #: Until when (must be in the future); null: until revoked.
    valid_until: AwareDatetime | None = None


class Consent(_Out):
    consent_id: int
    grantee_kind: GranteeKind
    grantee_id: str
    purpose: ConsentPurpose
    granted_at: datetime
    valid_until: datetime | None
    granted_by: str
    revoked_at: datetime | None
    revoked_by: str | None
    state: ConsentState


class ConsentEvent(_Out):
    event_id: int
    consent_id: int
    event: Literal["granted", "revoked"]
    at: datetime
    actor: str


class Consents(BaseModel):
    consents: list[Consent]
    history: list[ConsentEvent]


# --- devices --------------------------------------------------------------------------------------


class Device(_Out):
    device_key: str
    kind: str | None
    label: str | None
    manufacturer: str | None
    model: str | None
    serial_number: str | None
    firmware_revision: str | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    #: The patient the device is bound to now (None: nobody).
    patient_id: str | None


class Binding(_Out):
    binding_id: int
    device_key: str
    patient_id: str
    valid_from: datetime
    valid_to: datetime | None
    ended_by: str | None
    end_reason: str | None


class Gateway(_Out):
    gateway_id: str
    patient_id: str | None
    label: str | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None


# --- the whole profile ----------------------------------------------------------------------------


class Profile(BaseModel):
    """The digital medical profile of one patient."""

    patient: Demographics
    identifiers: list[Identifier]
    contacts: list[Contact]
    conditions: list[Condition]
    programmes: Programmes
    medications: list[Medication]
    risk_factors: list[RiskFactor]
    entries: list[Entry]
    clinician_notes: list[ClinicianNote]
    care_team: list[CareTeamMember]
    consents: list[Consent]
    devices: list[Device]
    bindings: list[Binding]
    gateways: list[Gateway]
