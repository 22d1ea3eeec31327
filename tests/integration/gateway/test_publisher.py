"""The gateway's MQTT publisher and forwarder against a real Mosquitto."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
import pytest

from device_simulators.patients import Measurement
from gateway.backoff import Backoff
from gateway.codec import BloodPressureMeasurement
from gateway.forwarder import forward_forever
from gateway.mqtt import MqttPublisher, PublishFailed, PublishRefused
from gateway.outbox import Outbox
from gateway.readings import blood_pressure_reading
from homewatch.embedded.broker import Mosquitto
from homewatch.wire import DeviceIdentity, ReadingsMessage, readings_topic

DEVICE = DeviceIdentity(
    address="C0:5A:00:00:00:01", manufacturer="Acme", model="BP-1", serial_number="S1"
)
T0 = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)


def make_reading(i: int):
    raw = Measurement(T0 + timedelta(minutes=i), 120 + i, 80, 70).encode()
    return blood_pressure_reading(
        BloodPressureMeasurement.from_bytes(raw), raw, DEVICE, T0, ZoneInfo("UTC")
    )


class Subscriber:
    """A plain paho subscriber collecting what arrives on a topic."""

    def __init__(self, endpoint, topic: str) -> None:
        self.messages: list[bytes] = []
        self.ready = asyncio.Event()
        loop = asyncio.get_running_loop()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: loop.call_soon_threadsafe(self.ready.set)
        self.client.on_message = lambda c, u, m: loop.call_soon_threadsafe(
            self.messages.append, m.payload
        )
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def test_forwarder_publishes_the_outbox_in_order_and_empties_it(
    tmp_path, mqtt_broker, topic_root
):
    topic = readings_topic("gw-1", topic_root)
    sub = Subscriber(mqtt_broker, topic)
    await asyncio.wait_for(sub.ready.wait(), 5)
    readings = [make_reading(i) for i in range(7)]
    async with (
        Outbox(tmp_path / "o.sqlite3") as outbox,
        MqttPublisher(mqtt_broker.url) as publisher,
    ):
        for r in readings:
            await outbox.put(r)
        task = asyncio.create_task(
            forward_forever(
                outbox,
                publisher,
                gateway_id="gw-1",
                topic=topic,
                batch_size=3,
                backoff=Backoff(0.1, 0.5),
            )
        )
        try:
            async with asyncio.timeout(10):
                while await outbox.depth():
                    await asyncio.sleep(0.05)
                while sum(len(ReadingsMessage.from_bytes(m).readings) for m in sub.messages) < 7:
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            sub.close()
    received = [r for m in sub.messages for r in ReadingsMessage.from_bytes(m).readings]
    assert received == readings
    assert [len(ReadingsMessage.from_bytes(m).readings) for m in sub.messages] == [3, 3, 1]


async def test_a_refused_publish_raises_and_the_reading_stays(tmp_path):
    """With MQTT 5 Mosquitto answers a PUBLISH its ACL denies with PUBACK "Not authorized"; a
    client that ignored the reason code (aiomqtt does) would delete the reading as delivered."""
    acl = tmp_path / "acl"
    acl.write_text("topic write allowed/#\n")
    broker = Mosquitto(extra_config=f"acl_file {acl}\n")
    endpoint = broker.start()
    topic = readings_topic("gw-1", "denied")
    try:
        async with (
            Outbox(tmp_path / "o.sqlite3") as outbox,
            MqttPublisher(endpoint.url) as publisher,
        ):
            with pytest.raises(PublishRefused, match="Not authorized") as refused:
                await publisher.publish(topic, b"x", timeout=5)
            assert refused.value.topic == topic
            await publisher.publish("allowed/x", b"ok", timeout=5)  # the session goes on

            await outbox.put(make_reading(1))
            task = asyncio.create_task(
                forward_forever(
                    outbox,
                    publisher,
                    gateway_id="gw-1",
                    topic=topic,
                    batch_size=10,
                    backoff=Backoff(0.05, 0.1),
                )
            )
            await asyncio.sleep(1.0)  # several refused attempts
            task.cancel()
            assert await outbox.depth() == 1  # never dropped
    finally:
        broker.close()


async def test_no_broker_is_a_publish_failure_not_a_hang():
    from homewatch.embedded.broker import free_port

    async with MqttPublisher(
        f"mqtt://127.0.0.1:{free_port()}", client_id=f"t-{uuid.uuid4().hex}"
    ) as publisher:
        with pytest.raises(PublishFailed):
            await publisher.publish("x", b"y", timeout=0.5)


def test_batches_are_cut_to_the_wire_size_limit(monkeypatch):
    from gateway import forwarder
    from gateway.outbox import QueuedReading

    batch = [QueuedReading(i, make_reading(i)) for i in range(40)]
    one = len(
        ReadingsMessage(gateway_id="gw-1", sent_at=T0, readings=[batch[0].reading]).to_bytes()
    )
    monkeypatch.setattr(forwarder, "MAX_MESSAGE_BYTES", one * 12)
    head, payload = forwarder._fit(batch, "gw-1")
    assert len(payload) <= one * 12
    assert head == batch[: len(head)] and 5 <= len(head) <= 12
