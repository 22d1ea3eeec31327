"""The gateway's MQTT publisher and forwarder against a real Mosquitto."""

import asyncio
import uuid

import pytest

from gateway.backoff import Backoff
from gateway.forwarder import forward_forever
from gateway.mqtt import MqttPublisher, PublishFailed, PublishRefused
from gateway.outbox import Outbox
from homewatch.embedded.broker import Mosquitto
from homewatch.wire import ReadingsMessage, readings_topic
from tests.fixtures.mqtt import MqttTap
from tests.integration.gateway.gateway_support import T0, make_reading


async def test_forwarder_publishes_the_outbox_in_order_and_empties_it(
    tmp_path, mqtt_broker, topic_root
):
    topic = readings_topic("gw-1", topic_root)
    sub = MqttTap(mqtt_broker, topic)
    await asyncio.wait_for(sub.subscribed.wait(), 5)
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


async def test_an_outbox_read_error_is_retried_not_fatal(tmp_path, mqtt_broker, topic_root):
    import sqlite3

    topic = readings_topic("gw-1", topic_root)
    sub = MqttTap(mqtt_broker, topic)
    await asyncio.wait_for(sub.subscribed.wait(), 5)
    async with (
        Outbox(tmp_path / "o.sqlite3") as outbox,
        MqttPublisher(mqtt_broker.url) as publisher,
    ):
        await outbox.put(make_reading(1))
        real_oldest, failures = outbox.oldest, []

        async def failing_once(limit: int):
            if not failures:
                failures.append(1)
                raise sqlite3.OperationalError("disk I/O error")
            return await real_oldest(limit)

        outbox.oldest = failing_once  # type: ignore[method-assign]
        task = asyncio.create_task(
            forward_forever(
                outbox, publisher, gateway_id="gw-1", topic=topic, batch_size=10,
                backoff=Backoff(0.05, 0.1),
            )
        )  # fmt: skip
        try:
            async with asyncio.timeout(10):
                while not sub.messages:
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            sub.close()
    assert failures == [1]  # it failed once, and the loop went on to deliver
    assert [r.reading_id for r in ReadingsMessage.from_bytes(sub.messages[0]).readings] == [
        make_reading(1).reading_id
    ]
