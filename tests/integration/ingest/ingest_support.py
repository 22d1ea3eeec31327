"""Helpers of the ingest integration tests: wire messages, a paho publisher, polling, SQL peeks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from homewatch import wire
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


def message(gateway_id: str, *readings: wire.BloodPressureReading) -> wire.ReadingsMessage:
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
