"""Validation of an MQTT message against the wire contract and its topic, and of its values.

Anything off-contract becomes an ``InvalidMessage`` with a ``QuarantineReason``: bad input is
data, it is quarantined byte-exact and the consumer goes on. A reading that is on-contract but
physically impossible (``impossible_value``) is set aside on its own, so one bad record does not
hold back the rest of a backlog.
"""

from __future__ import annotations

import json
import math
from enum import StrEnum

import pydantic

from homewatch import wire
from ingest_server.errors import InvalidMessage

_MAX_DETAIL = 2000

#: mg/dL per mmol/L of glucose (molar mass 180.16 g/mol; ../shared/clinical/RULES.md, SPEC.md 4.1).
MG_DL_PER_MMOL_L = 18.016
#: Above any glucose concentration a living patient or a meter can have (meters stop near 33).
MAX_GLUCOSE_MMOL_PER_L = 100.0
#: How far the two units of one glucose reading may disagree (relative): the gateway converts
#: once from what the meter sent, so more than rounding means a defect somewhere upstream.
GLUCOSE_UNIT_TOLERANCE = 0.01


class QuarantineReason(StrEnum):
    NOT_READINGS_TOPIC = "not a readings topic"
    MALFORMED = "malformed payload"  # not JSON, or not a JSON object
    UNKNOWN_SCHEMA = "unknown schema"
    INVALID = "invalid message"  # the right schema, but fields off-contract
    GATEWAY_MISMATCH = "gateway mismatch"  # topic names another gateway than the message
    UNBOUND_DEVICE = "unbound device"  # no patient bound to the device at measured_at
    IMPOSSIBLE_VALUE = "impossible value"  # one reading whose values cannot be a measurement
    #: measured_at older than the storage's retention: stored, it would be deleted at once
    OUTSIDE_RETENTION = "outside retention"
    REJECTED = "rejected by database"
    PROCESSING_FAILED = "processing failed"


def parse_message(
    topic: str, payload: bytes, topic_root: str = wire.TOPIC_ROOT
) -> wire.ReadingsMessage:
    """The validated readings message, or ``InvalidMessage`` saying why not."""
    topic_gateway = wire.gateway_id_from_topic(topic, topic_root)
    if topic_gateway is None:
        raise InvalidMessage(QuarantineReason.NOT_READINGS_TOPIC, f"topic {topic!r}")
    try:
        message = wire.ReadingsMessage.from_bytes(payload)
    except pydantic.ValidationError as exc:
        raise _classify(payload, exc) from exc
    if message.gateway_id != topic_gateway:
        raise InvalidMessage(
            QuarantineReason.GATEWAY_MISMATCH,
            f"topic names gateway {topic_gateway!r}, message says {message.gateway_id!r}",
        )
    return message


def _classify(payload: bytes, exc: pydantic.ValidationError) -> InvalidMessage:
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError) as json_exc:  # UnicodeDecodeError is a ValueError
        return InvalidMessage(QuarantineReason.MALFORMED, f"not JSON: {json_exc}"[:_MAX_DETAIL])
    if not isinstance(document, dict):
        return InvalidMessage(
            QuarantineReason.MALFORMED, f"a JSON {type(document).__name__}, not an object"
        )
    schema = document.get("schema")
    if schema != wire.SCHEMA:
        return InvalidMessage(
            QuarantineReason.UNKNOWN_SCHEMA,
            f"schema {schema!r}, expected {wire.SCHEMA!r}"[:_MAX_DETAIL],
        )
    errors = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:10]
    )
    return InvalidMessage(QuarantineReason.INVALID, errors[:_MAX_DETAIL])


def impossible_value(reading: wire.Reading) -> str | None:
    """Why ``reading`` holds values no measurement can have, or None when it could be real.

    Only what is impossible, not what is merely implausible: an implausible blood pressure (a
    systolic of 320) is stored and left out by ``alerting.plausibility``, because a clinician may
    still want to see it.
    """
    if isinstance(reading, wire.GlucoseReading):
        return _impossible_glucose(reading.values)
    return _impossible_blood_pressure(reading.values)


#: No cuff inflates beyond this; a value above it is a decoding or device fault, not a reading.
MAX_PRESSURE_MMHG = 500.0
MAX_PULSE_PER_MIN = 400.0


def _impossible_blood_pressure(values: wire.BloodPressureValues) -> str | None:
    checks = [
        ("systolic", values.systolic.value, MAX_PRESSURE_MMHG),
        ("diastolic", values.diastolic.value, MAX_PRESSURE_MMHG),
        ("mean arterial pressure", values.mean_arterial_pressure.value, MAX_PRESSURE_MMHG),
        (
            "pulse",
            None if values.pulse_rate is None else values.pulse_rate.value,
            MAX_PULSE_PER_MIN,
        ),
    ]
    for name, value, limit in checks:
        if value is None:
            continue  # the device reported no value (failed measurement): stored as such
        if not math.isfinite(value) or not 0 <= value <= limit:
            return f"{name} {value:g} outside 0..{limit:g}"
    return None


def _impossible_glucose(values: wire.GlucoseValues) -> str | None:
    mmol, mg = values.mmol_per_l.value, values.mg_per_dl.value
    if mmol is None and mg is None:
        return None  # a special value (HI/LO) or no concentration: stored as such
    if mmol is None or mg is None:
        return f"glucose given in one unit only ({mmol} mmol/L, {mg} mg/dL)"
    if not (math.isfinite(mmol) and math.isfinite(mg)):
        return f"glucose not a finite number ({mmol} mmol/L, {mg} mg/dL)"
    if mmol < 0 or mg < 0:
        return f"negative glucose ({mmol:g} mmol/L, {mg:g} mg/dL)"
    if mmol > MAX_GLUCOSE_MMOL_PER_L or mg > MAX_GLUCOSE_MMOL_PER_L * MG_DL_PER_MMOL_L:
        return f"glucose {mmol:g} mmol/L ({mg:g} mg/dL) above {MAX_GLUCOSE_MMOL_PER_L:g} mmol/L"
    expected_mg = mmol * MG_DL_PER_MMOL_L
    if abs(mg - expected_mg) > GLUCOSE_UNIT_TOLERANCE * max(mg, expected_mg):
        return (
            f"glucose units disagree: {mmol:g} mmol/L is {expected_mg:.1f} mg/dL, "
            f"the reading says {mg:g} mg/dL"
        )
    return None
