"""Helpers of the ingest integration tests: wire messages, a paho publisher, polling, SQL peeks."""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import httpx
import paho.mqtt.client as paho
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from homewatch import wire
from ingest_server.auth import AuthSettings, Role, issue_dev_token
from ingest_server.consumer import Consumer
from ingest_server.settings import IngestSettings


def device(serial: str) -> wire.DeviceIdentity:
    return wire.DeviceIdentity(
        address="AA:BB:CC:00:00:01",
        manufacturer="Acme",
        model="BP-1",
        serial_number=serial,
        firmware_revision="1.0",
    )


def bp_reading(
    dev: wire.DeviceIdentity,
    measured_at: datetime,
    systolic: float | None,
    diastolic: float | None,
    *,
    pulse: float | None = 70.0,
    flags: Sequence[wire.MeasurementFlag] = (),
) -> wire.BloodPressureReading:
    raw = f"{systolic}/{diastolic}/{measured_at.isoformat()}".encode().hex()
    device_time = measured_at.replace(tzinfo=None)
    mean = (
        None if systolic is None or diastolic is None else round((systolic + 2 * diastolic) / 3, 1)
    )
    return wire.BloodPressureReading(
        reading_id=wire.derive_reading_id(
            dev, wire.bp_record_key(device_time, bytes.fromhex(raw), measured_at)
        ),
        device=dev,
        device_time=device_time,
        received_at=measured_at + timedelta(seconds=2),
        measured_at=measured_at,
        values=wire.BloodPressureValues(
            systolic=wire.Quantity(value=systolic, unit=wire.Unit.MMHG),
            diastolic=wire.Quantity(value=diastolic, unit=wire.Unit.MMHG),
            mean_arterial_pressure=wire.Quantity(value=mean, unit=wire.Unit.MMHG),
            pulse_rate=wire.Quantity(value=pulse, unit=wire.Unit.BEATS_PER_MINUTE),
        ),
        flags=list(flags),
        raw=raw,
    )


def meter(serial: str) -> wire.DeviceIdentity:
    return wire.DeviceIdentity(
        address="AA:BB:CC:00:00:02",
        manufacturer="Acme",
        model="GL-1",
        serial_number=serial,
        firmware_revision="2.0",
    )


def sfloat(mantissa: int, exponent: int) -> bytes:
    """An IEEE 11073 SFLOAT, little endian: 4-bit exponent over a 12-bit mantissa."""
    return (((exponent & 0xF) << 12) | (mantissa & 0x0FFF)).to_bytes(2, "little")


#: The SFLOAT special value +INFINITY: what a meter sends for a result above its range (HI).
SFLOAT_PLUS_INFINITY = b"\xfe\x07"
MG_DL_PER_MMOL_L = Decimal("18.016")


def _date_time(t: datetime) -> bytes:
    return t.year.to_bytes(2, "little") + bytes([t.month, t.day, t.hour, t.minute, t.second])


def glucose_reading(
    dev: wire.DeviceIdentity,
    measured_at: datetime,
    sequence_number: int,
    *,
    mantissa: int | None,
    exponent: int,
    unit: Literal["kg/L", "mol/L"],
    sample_type: str = "capillary_plasma",
    sample_location: str = "finger",
    type_location: int = 0x12,  # capillary plasma, finger
    sensor_status: Sequence[str] = (),
    status_bits: int | None = None,
    context: wire.GlucoseContext | None = None,
    raw_context: bytes | None = None,
    time_source: wire.TimeSource = wire.TimeSource.DEVICE,
    clock: wire.DeviceClock | None = None,
) -> wire.GlucoseReading:
    """A stored glucose record as a meter sends it (Glucose Measurement bytes, SPEC.md 4.1) and
    as the gateway converts it: concentration ``mantissa`` x 10^``exponent`` in ``unit``, both
    clinical units from exact decimals; ``mantissa=None`` sends +INFINITY (a HI result)."""
    device_time = measured_at.replace(tzinfo=None)
    flags = 0x02 | (0x04 if unit == "mol/L" else 0)
    concentration = SFLOAT_PLUS_INFINITY if mantissa is None else sfloat(mantissa, exponent)
    body = concentration + bytes([type_location])
    if status_bits is not None:
        flags |= 0x08
        body += status_bits.to_bytes(2, "little")
    if raw_context is not None:
        flags |= 0x10
    raw = bytes([flags]) + sequence_number.to_bytes(2, "little") + _date_time(device_time) + body
    mmol: float | None = None
    mg: float | None = None
    if mantissa is not None:
        value = Decimal(mantissa).scaleb(exponent)
        if unit == "mol/L":
            mmol, mg = float(value * 1000), float(value * 1000 * MG_DL_PER_MMOL_L)
        else:
            mmol, mg = float(value * 100_000 / MG_DL_PER_MMOL_L), float(value * 100_000)
    return wire.GlucoseReading(
        reading_id=wire.derive_reading_id(
            dev, wire.glucose_record_key(sequence_number, device_time)
        ),
        device=dev,
        sequence_number=sequence_number,
        device_time=device_time,
        received_at=measured_at + timedelta(minutes=30),  # transferred from the meter's memory
        measured_at=measured_at,
        time_source=time_source,
        device_clock=clock or wire.DeviceClock(status=wire.ClockStatus.UNKNOWN),
        values=wire.GlucoseValues(
            mmol_per_l=wire.Quantity(value=mmol, unit=wire.Unit.MMOL_PER_L),
            mg_per_dl=wire.Quantity(value=mg, unit=wire.Unit.MG_PER_DL),
            reported_unit=unit,
            sample_type=sample_type,
            sample_location=sample_location,
            sensor_status=list(sensor_status),
        ),
        context=context,
        control_solution="control_solution" in (sample_type, sample_location),
        raw=raw.hex(),
        raw_context=None if raw_context is None else raw_context.hex(),
    )


#: A Glucose Measurement Context (SPEC.md 4.2) for sequence number 7: carbohydrate, meal and
#: tester-health present; breakfast, 50 g (SFLOAT 50e-3 kg); preprandial; self, no health issues.
RAW_GLUCOSE_CONTEXT = bytes.fromhex("0707000132d00151")
GLUCOSE_CONTEXT = wire.GlucoseContext(
    meal="preprandial",
    tester="self",
    health="no_health_issues",
    carbohydrate="breakfast",
    carbohydrate_grams=50.0,
)


def with_glucose(
    reading: wire.GlucoseReading, mmol_per_l: float | None, mg_per_dl: float | None
) -> wire.GlucoseReading:
    """``reading`` carrying other concentrations (what a faulty gateway might send)."""
    values = reading.values.model_copy(
        update={
            "mmol_per_l": wire.Quantity(value=mmol_per_l, unit=wire.Unit.MMOL_PER_L),
            "mg_per_dl": wire.Quantity(value=mg_per_dl, unit=wire.Unit.MG_PER_DL),
        }
    )
    return reading.model_copy(update={"values": values})


def message(
    gateway_id: str, *readings: wire.BloodPressureReading | wire.GlucoseReading
) -> wire.ReadingsMessage:
    return wire.ReadingsMessage(
        gateway_id=gateway_id, sent_at=datetime.now(UTC), readings=list(readings)
    )


def minutes_ago(minutes: float) -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ingest_settings(
    database_url: str, broker_url: str, topic_root: str, **overrides: Any
) -> IngestSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "mqtt_url": broker_url,
        "topic_root": topic_root,
        "client_id": unique("hwtest-ingest"),
        "session_expiry_s": 120,
        "db_retry_min_s": 0.05,
        "db_retry_max_s": 0.3,
        "api_port": 0,
        **overrides,
    }
    return IngestSettings(**values)


class Publisher:
    """A gateway stand-in: publishes QoS 1 and waits for the PUBACK."""

    def __init__(self, host: str, port: int) -> None:
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=unique("hwtest-pub"),
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.connect(host, port)
        self._client.loop_start()

    def publish(self, topic: str, payload: bytes, timeout: float = 5.0) -> None:
        info = self._client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout)
        assert info.is_published(), f"no PUBACK for {topic}"

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@contextmanager
def publisher(host: str, port: int) -> Iterator[Publisher]:
    pub = Publisher(host, port)
    try:
        yield pub
    finally:
        pub.close()


async def publish(host: str, port: int, topic: str, *payloads: bytes) -> None:
    def run() -> None:
        with publisher(host, port) as pub:
            for payload in payloads:
                pub.publish(topic, payload)

    await asyncio.wait_for(asyncio.to_thread(run), 15)


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], seconds: float = 10.0, what: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = predicate()
        if not isinstance(value, bool):
            value = await value
        if value:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.05)


def query(
    database_url: str, sql: str, params: Sequence[Any] | None = None
) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


async def subscribed(consumer: Consumer, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        await consumer.wait_subscribed()


# --- API authentication (the API needs a bearer token since the profile issue) -------------------


@pytest.fixture
def dev_auth(monkeypatch: pytest.MonkeyPatch) -> AuthSettings:
    """A development signing key of this test's own in the environment, where the API of a
    service started in the test finds it (``HOMEWATCH_AUTH_DEV_SIGNING_KEY``)."""
    key = secrets.token_urlsafe(40)
    monkeypatch.setenv("HOMEWATCH_AUTH_DEV_SIGNING_KEY", key)
    return AuthSettings(dev_signing_key=key)


class PatientTokenAuth(httpx.Auth):
    """httpx auth for ``/patients/{id}/...``: a token of that patient (who may read their own
    data), signed with the key ``dev_auth`` put in the environment."""

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        match = re.match(r"^/patients/([^/]+)/", request.url.path)
        if match:
            token = issue_dev_token(AuthSettings(), subject=match.group(1), role=Role.PATIENT)
            request.headers["Authorization"] = f"Bearer {token}"
        yield request
