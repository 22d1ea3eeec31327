"""Models of the admin API and the login."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field

from ingest_server.api.schemas.common import DeviceKey, Id, LongText, ShortText
from ingest_server.auth.principal import Role
from ingest_server.profile.models import AlertSeverity, DeviceKind


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    role: Role


class UserIn(_In):
    username: Annotated[str, Field(pattern=r"^[A-Za-z0-9._@-]{1,64}$")]
    password: Annotated[str, Field(min_length=12, max_length=256)]
    role: Role
    #: What the token's ``sub`` carries: the clinician, patient or gateway id, or an admin name.
    subject: Id


class User(_Out):
    username: str
    role: Role
    subject: str
    disabled: bool
    created_at: datetime


class OrganisationIn(_In):
    name: ShortText


class Organisation(_Out):
    organisation_id: str
    name: str
    created_at: datetime


class ClinicianIn(_In):
    display_name: ShortText
    organisation_id: Id
    profession: ShortText | None = None
    active: bool = True


class Clinician(_Out):
    clinician_id: str
    display_name: str
    organisation_id: str
    profession: str | None
    active: bool
    created_at: datetime


class GatewayIn(_In):
    #: The patient whose home the gateway is in (None: not assigned yet).
    patient_id: Id | None = None
    label: ShortText | None = None


class DeviceIn(_In):
    """Register (or describe) a device before its first reading."""

    device_key: DeviceKey
    kind: DeviceKind | None = None
    label: ShortText | None = None
    manufacturer: ShortText | None = None
    model: ShortText | None = None
    serial_number: ShortText | None = None


class BindingIn(_In):
    device_key: DeviceKey
    patient_id: Id
    #: From when readings of the device are the patient's (default: now).
    valid_from: AwareDatetime | None = None


class EndBindingIn(_In):
    device_key: DeviceKey
    #: When the device stops being the patient's (default: now).
    at: AwareDatetime | None = None
    reason: ShortText | None = None


class QuarantineEntry(_Out):
    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str | None
    reading_id: Any | None
    size: int
    decision: str | None
    review_note: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None


class QuarantineDetail(BaseModel):
    entry: QuarantineEntry
    #: The payload as received, hex; cut after ``payload_preview_bytes``.
    payload_hex: str
    truncated: bool


class ReviewIn(_In):
    decision: Literal["dismissed", "reingested"]
    note: LongText | None = None


class ReingestResult(_Out):
    stored: int
    duplicates: int
    quarantined: int


class Review(BaseModel):
    entry: QuarantineEntry
    reingested: ReingestResult | None


class AuditRow(_Out):
    id: int
    at: datetime
    actor: str
    role: str | None
    action: str
    resource: str | None
    patient_id: str | None
    purpose: str | None
    client_address: str | None
    outcome: Literal["allowed", "denied"]


class WebhookIn(_In):
    url: AnyHttpUrl
    min_severity: AlertSeverity = AlertSeverity.URGENT


class Webhook(_Out):
    endpoint_id: int
    url: str
    min_severity: AlertSeverity
    active: bool
    created_at: datetime
    created_by: str


class WebhookCreated(BaseModel):
    endpoint: Webhook
    #: The HMAC key for ``X-Homewatch-Signature``: shown this once.
    secret: str


class WebhookAttempt(_Out):
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDelivery(BaseModel):
    delivery_id: int
    endpoint_id: int
    alert_id: int
    event: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    log: list[WebhookAttempt]
