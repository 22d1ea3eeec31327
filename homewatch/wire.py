"""The wire contract between gateway and ingest server: topics, message schema, reading ids.

Defined once, here; the gateway builds these messages and the ingest server validates them with
the same models. A change that is not backwards compatible gets a new ``SCHEMA`` version, and the
ingest server quarantines versions it does not know instead of guessing.

A message carries a batch of readings (one, for a live measurement; many, for a backlog), each
with a deterministic ``reading_id`` so that at-least-once delivery stores every reading once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, NaiveDatetime, TypeAdapter

SCHEMA = "homewatch.readings/1"

TOPIC_ROOT = "homewatch/v1"
#: Namespace of every reading id; never change it, or redelivered readings get new ids.
READING_ID_NAMESPACE = uuid.UUID("6f0d5c1e-52d7-4a0e-9a3e-2b8f4f3d7c11")

MAX_READINGS_PER_MESSAGE = 500
#: Largest message a gateway sends; the broker refuses larger ones (deploy/mosquitto/).
MAX_MESSAGE_BYTES = 256 * 1024

CodeName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
#: What a device says about itself (Device Information strings): printable text only.
DeviceText = Annotated[str, Field(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")]


# ``root`` lets one broker carry several independent deployments (or test modules) side by side.


def readings_topic(gateway_id: str, root: str = TOPIC_ROOT) -> str:
    """The topic a gateway publishes its readings on (one topic per gateway, for ACLs)."""
    return f"{root}/gateways/{gateway_id}/readings"


def readings_subscription(shared_group: str | None = "ingest", root: str = TOPIC_ROOT) -> str:
    """What the ingest server subscribes to; an MQTT 5 shared subscription when a group is given."""
    topic = f"{root}/gateways/+/readings"
    return f"$share/{shared_group}/{topic}" if shared_group else topic


def gateway_id_from_topic(topic: str, root: str = TOPIC_ROOT) -> str | None:
    """The gateway id a readings topic names, or None when the topic is not a readings topic."""
    prefix = f"{root}/gateways/"
    if not topic.startswith(prefix) or not topic.endswith("/readings"):
        return None
    gateway_id = topic[len(prefix) : -len("/readings")]
    return gateway_id if gateway_id and "/" not in gateway_id else None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceIdentity(_Strict):
    """Who measured: what the Device Information service and the radio told the gateway."""

    address: Annotated[DeviceText, Field(min_length=1)]
    manufacturer: DeviceText | None = None
    model: DeviceText | None = None
    serial_number: DeviceText | None = None
    firmware_revision: DeviceText | None = None

    @property
    def device_key(self) -> str:
        """Stable identity of the physical device: make, model and serial when the device gives
        a serial number (addresses of real devices may be random and change), else its address."""
        if self.serial_number:
            return serial_device_key(self.manufacturer, self.model, self.serial_number)
        return f"addr/{self.address.upper()}"


def serial_device_key(manufacturer: str | None, model: str | None, serial_number: str) -> str:
    """The device key of a device that reports a serial number (what an admin binds)."""
    return f"{manufacturer or '?'}/{model or '?'}/{serial_number}"


class Unit(StrEnum):
    """UCUM codes of the units on the wire. Values are normalised before they are sent."""

    MMHG = "mm[Hg]"
    BEATS_PER_MINUTE = "/min"
    MMOL_PER_L = "mmol/L"
    MG_PER_DL = "mg/dL"
    KILOGRAM = "kg"
    METRE = "m"
    KG_PER_M2 = "kg/m2"
    PERCENT = "%"
    CELSIUS = "Cel"


class Quantity(_Strict):
    #: None: the device reported NaN/NRes/±INF (a failed, absent or out-of-range measurement);
    #: NaN and infinities never appear as numbers on the wire.
    value: Annotated[float, Field(allow_inf_nan=False)] | None
    unit: Unit


class BloodPressureValues(_Strict):
    systolic: Quantity
    diastolic: Quantity
    mean_arterial_pressure: Quantity
    pulse_rate: Quantity | None = None
    #: Unit the cuff reported in before normalisation to mmHg ("mmHg" or "kPa").
    reported_unit: Literal["mmHg", "kPa"] = "mmHg"
    user_id: int | None = Field(default=None, ge=0, le=255)


class MeasurementFlag(StrEnum):
    """Quality marks a device attaches to a measurement (Blood Pressure Measurement Status)."""

    BODY_MOVEMENT = "body_movement"
    CUFF_TOO_LOOSE = "cuff_too_loose"
    IRREGULAR_PULSE = "irregular_pulse"
    PULSE_RATE_ABOVE_RANGE = "pulse_rate_above_range"
    PULSE_RATE_BELOW_RANGE = "pulse_rate_below_range"
    IMPROPER_POSITION = "improper_position"


class ClockStatus(StrEnum):
    """What the gateway knew of the device's clock when it took the reading."""

    #: The device has no clock the gateway can read (many cuffs): its time stamp is taken as
    #: given, in the configured device time zone, when plausible.
    UNKNOWN = "unknown"
    #: Read on connect and within the configured bound of the gateway's clock.
    SYNCHRONISED = "synchronised"
    #: Read on connect and off by more than the bound: ``measured_at`` is the device time
    #: corrected by ``offset_seconds``.
    CORRECTED = "corrected"
    #: Never set (e.g. reads as the year 2000 after a battery change): the device time means
    #: nothing, and ``measured_at`` is the receive time.
    UNSET = "unset"


class DeviceClock(_Strict):
    status: ClockStatus
    #: Device clock minus gateway clock when the gateway read it (positive: device ahead).
    offset_seconds: float | None = None


class TimeSource(StrEnum):
    """Where ``measured_at`` came from, so a clinician can tell an estimate from a time stamp."""

    DEVICE = "device"  # the device's time stamp, as given
    DEVICE_CORRECTED = "device_corrected"  # the device's time stamp, corrected for its clock
    RECEIVED = "received"  # no usable device time: when the gateway received it


class _Timed(_Strict):
    reading_id: uuid.UUID
    device: DeviceIdentity
    #: The device's own clock, as it stamped the measurement (local wall-clock, no time zone).
    device_time: NaiveDatetime | None
    #: When the gateway received the measurement, from the gateway's clock, UTC.
    received_at: AwareDatetime
    #: Best estimate of when the measurement was taken, UTC: the device time corrected for
    #: the device clock's offset and time zone when known, otherwise the receive time.
    measured_at: AwareDatetime
    #: Absent from gateways older than the clock check: read as "unknown" / "device".
    time_source: TimeSource = TimeSource.DEVICE
    device_clock: DeviceClock = DeviceClock(status=ClockStatus.UNKNOWN)


class BloodPressureReading(_Timed):
    kind: Literal["blood_pressure"] = "blood_pressure"
    values: BloodPressureValues
    flags: list[MeasurementFlag] = Field(default_factory=list, max_length=16)
    #: The characteristic value exactly as received, hex, kept for audit.
    raw: str = Field(pattern=r"^[0-9a-f]*$", max_length=1024)


class GlucoseValues(_Strict):
    """A glucose concentration in both clinical units, converted once, at the gateway."""

    #: None (both): the meter reported a special value (HI/LO, NaN) or no concentration.
    mmol_per_l: Quantity
    mg_per_dl: Quantity
    #: The SI unit the meter sent before conversion.
    reported_unit: Literal["kg/L", "mol/L"]
    #: GLS Type and Sample Location, snake_case names ("capillary_plasma", "finger"), or
    #: "reserved_<n>" for codes the SIG has not assigned; None when the meter sent none.
    sample_type: CodeName | None = None
    sample_location: CodeName | None = None
    #: Sensor Status Annunciation bits set, snake_case names ("device_battery_low", ...).
    sensor_status: list[CodeName] = Field(default_factory=list, max_length=16)


class GlucoseContext(_Strict):
    """Glucose Measurement Context, in clinical units (grams, millilitres or milligrams)."""

    meal: CodeName | None = None  # preprandial, postprandial, fasting, casual, bedtime
    tester: CodeName | None = None  # self, health_care_professional, lab_test, not_available
    health: CodeName | None = None
    carbohydrate: CodeName | None = None  # breakfast, lunch, ...
    carbohydrate_grams: float | None = None
    exercise_duration_seconds: int | None = Field(default=None, ge=0, le=0xFFFF)
    exercise_intensity_percent: int | None = Field(default=None, ge=0, le=255)
    medication: CodeName | None = None  # rapid_acting_insulin, ...
    medication_milligrams: float | None = None
    medication_millilitres: float | None = None
    hba1c_percent: float | None = None


class GlucoseReading(_Timed):
    kind: Literal["glucose"] = "glucose"
    #: The meter's record number (uint16; can wrap or restart: not unique on its own).
    sequence_number: int = Field(ge=0, le=0xFFFF)
    values: GlucoseValues
    context: GlucoseContext | None = None
    #: A control-solution test, not a patient sample: stored, never evaluated.
    control_solution: bool = False
    #: The Glucose Measurement and its Context exactly as received, hex, kept for audit.
    raw: str = Field(pattern=r"^[0-9a-f]*$", max_length=1024)
    raw_context: str | None = Field(default=None, pattern=r"^[0-9a-f]*$", max_length=1024)


class WeightValues(_Strict):
    weight: Quantity  # kg
    bmi: Quantity | None = None  # kg/m2, as the scale computed it
    height: Quantity | None = None  # m
    #: The unit system the scale sent before normalisation to SI.
    reported_unit: Literal["SI", "imperial"] = "SI"
    user_id: int | None = Field(default=None, ge=0, le=255)


class WeightReading(_Timed):
    kind: Literal["weight"] = "weight"
    values: WeightValues
    raw: str = Field(pattern=r"^[0-9a-f]*$", max_length=1024)


class OximetryValues(_Strict):
    """PLX Spot-Check: SpO2 and pulse, with the oximeter's own status marks."""

    spo2: Quantity  # %
    pulse_rate: Quantity  # /min
    pulse_amplitude_index: Quantity | None = None  # %
    #: Measurement Status and Device and Sensor Status bits set, snake_case names.
    status: list[CodeName] = Field(default_factory=list, max_length=32)


class OximetryReading(_Timed):
    kind: Literal["oximetry"] = "oximetry"
    values: OximetryValues
    raw: str = Field(pattern=r"^[0-9a-f]*$", max_length=1024)


class TemperatureValues(_Strict):
    temperature: Quantity  # Cel
    reported_unit: Literal["Cel", "[degF]"] = "Cel"
    #: Temperature Type (body site) as snake_case ("armpit", "ear", ...), when sent.
    site: CodeName | None = None


class TemperatureReading(_Timed):
    kind: Literal["body_temperature"] = "body_temperature"
    values: TemperatureValues
    raw: str = Field(pattern=r"^[0-9a-f]*$", max_length=1024)


Reading = Annotated[
    BloodPressureReading | GlucoseReading | WeightReading | OximetryReading | TemperatureReading,
    Field(discriminator="kind"),
]


#: Parses one reading of either kind (the gateway's outbox stores readings one by one).
READING = TypeAdapter(Reading)


class ReadingsMessage(_Strict):
    """One MQTT message: a gateway's batch of readings."""

    schema_: Literal["homewatch.readings/1"] = Field(default=SCHEMA, alias="schema")
    gateway_id: Identifier
    sent_at: AwareDatetime
    readings: list[Reading] = Field(min_length=1, max_length=MAX_READINGS_PER_MESSAGE)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=False).encode()

    @classmethod
    def from_bytes(cls, payload: bytes) -> ReadingsMessage:
        """Parse and validate; raises ``pydantic.ValidationError`` on anything off-contract."""
        return cls.model_validate_json(payload)


def derive_reading_id(device: DeviceIdentity, record_key: str) -> uuid.UUID:
    """Deterministic id of one reading: the same device record always maps to the same id.

    ``record_key`` identifies the record on that device: its sequence number where the profile
    has one, otherwise the device time stamp with the raw payload (two different measurements
    with the same time stamp differ in their values).
    """
    return uuid.uuid5(READING_ID_NAMESPACE, f"{device.device_key}|{record_key}")


def bp_record_key(device_time: datetime | None, raw: bytes, received_at: datetime) -> str:
    """Record key of a blood-pressure measurement (BPS has no sequence numbers).

    Without a device time stamp the receive time stands in: the id is then fixed when the gateway
    first stores the reading, which still makes redelivery of the same message harmless.
    """
    when = device_time.isoformat() if device_time else f"rx:{received_at.isoformat()}"
    return f"bp|{when}|{raw.hex()}"


def glucose_record_key(sequence_number: int, device_time: datetime | None) -> str:
    """Record key of a stored glucose record: its sequence number with the meter's own time
    stamp, because sequence numbers wrap at 65535 and restart when a meter is reset."""
    when = device_time.isoformat() if device_time else "no-time"
    return f"glucose|{sequence_number}|{when}"
