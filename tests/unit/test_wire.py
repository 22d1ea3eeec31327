import json
from datetime import UTC, datetime

import pydantic
import pytest

from homewatch import wire


def test_topics():
    assert wire.readings_topic("gw-1") == "homewatch/v1/gateways/gw-1/readings"
    assert wire.readings_subscription() == "$share/ingest/homewatch/v1/gateways/+/readings"
    assert wire.readings_subscription(None, root="t/x") == "t/x/gateways/+/readings"
    assert wire.gateway_id_from_topic("homewatch/v1/gateways/gw-1/readings") == "gw-1"
    assert wire.gateway_id_from_topic("t/x/gateways/gw-1/readings", root="t/x") == "gw-1"
    for bad in (
        "homewatch/v1/gateways/a/b/readings",
        "homewatch/v1/gateways//readings",
        "other/gw-1/readings",
    ):
        assert wire.gateway_id_from_topic(bad) is None


def _message() -> dict:
    device = wire.DeviceIdentity(address="AA:BB", manufacturer="Acme", model="M", serial_number="1")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    reading = wire.BloodPressureReading(
        reading_id=wire.derive_reading_id(device, "bp|x"),
        device=device,
        device_time=None,
        received_at=now,
        measured_at=now,
        values=wire.BloodPressureValues(
            systolic=wire.Quantity(value=120, unit=wire.Unit.MMHG),
            diastolic=wire.Quantity(value=80, unit=wire.Unit.MMHG),
            mean_arterial_pressure=wire.Quantity(value=None, unit=wire.Unit.MMHG),
        ),
        raw="00",
    )
    return json.loads(
        wire.ReadingsMessage(gateway_id="gw-1", sent_at=now, readings=[reading]).to_bytes()
    )


def test_message_carries_schema_version():
    assert _message()["schema"] == wire.SCHEMA


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m.update(schema="homewatch.readings/2"),
        lambda m: m.update(readings=[]),
        lambda m: m.update(extra="field"),
        lambda m: m["readings"][0].update(received_at="2026-01-01T00:00:00"),  # naive time
        lambda m: m["readings"][0]["values"]["systolic"].update(unit="kPa"),  # wrong unit
        lambda m: m["readings"][0].update(kind="glucose"),
        lambda m: m.update(gateway_id="a/b"),
        lambda m: m["readings"][0]["device"].update(serial_number="12\x003"),
    ],
    ids=[
        "schema-version",
        "empty",
        "unknown-field",
        "naive-time",
        "wrong-unit",
        "unknown-kind",
        "bad-gateway-id",
        "control-character",
    ],
)
def test_off_contract_messages_are_rejected(mutate):
    message = _message()
    mutate(message)
    with pytest.raises(pydantic.ValidationError):
        wire.ReadingsMessage.from_bytes(json.dumps(message).encode())


def test_device_key_prefers_serial_number():
    assert (
        wire.DeviceIdentity(
            address="aa:bb", manufacturer="A", model="M", serial_number="9"
        ).device_key
        == "A/M/9"
    )
    assert wire.DeviceIdentity(address="aa:bb").device_key == "addr/AA:BB"
