"""Validation of an MQTT message against the wire contract and its topic.

Anything off-contract becomes an ``InvalidMessage`` with a ``QuarantineReason``: bad input is
data, it is quarantined byte-exact and the consumer goes on.
"""

from __future__ import annotations

import json
from enum import StrEnum

import pydantic

from homewatch import wire
from ingest_server.errors import InvalidMessage

_MAX_DETAIL = 2000


class QuarantineReason(StrEnum):
    NOT_READINGS_TOPIC = "not a readings topic"
    MALFORMED = "malformed payload"  # not JSON, or not a JSON object
    UNKNOWN_SCHEMA = "unknown schema"
    INVALID = "invalid message"  # the right schema, but fields off-contract
    GATEWAY_MISMATCH = "gateway mismatch"  # topic names another gateway than the message
    UNBOUND_DEVICE = "unbound device"  # no patient bound to the device at measured_at
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
