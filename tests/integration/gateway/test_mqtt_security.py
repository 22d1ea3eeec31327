"""Per-gateway credentials against a Mosquitto set up like production: password file, TLS with
client certificates, and an ACL that confines each gateway to its own topic prefix.

What is checked is what protects readings: the right credentials deliver; a wrong password or a
wrong CA never connects (a clear error, retried with back-off, readings kept); a publish under
another gateway's prefix is refused by the broker (MQTT 5 PUBACK 0x87 "Not authorized" from
Mosquitto 2.0) and the readings stay in the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest

from gateway.backoff import Backoff
from gateway.forwarder import forward_forever
from gateway.mqtt import (
    BrokerRefused,
    MqttPublisher,
    MqttSecurity,
    NotConnected,
    PublishRefused,
)
from gateway.outbox import Outbox
from gateway.settings import GatewaySettings
from homewatch.wire import ReadingsMessage, readings_topic
from tests.integration.gateway.gateway_support import make_reading
from tests.integration.gateway.mqtt_security_support import SecureBroker, start_secure_broker

# Made per run: no credential lives in the repository.
PASSWORDS = {name: secrets.token_urlsafe(16) for name in ("gw-a", "gw-b", "ingest")}


@pytest.fixture(scope="module")
def secure(tmp_path_factory, topic_root) -> Iterator[SecureBroker]:
    broker = start_secure_broker(tmp_path_factory.mktemp("mqtt-security"), topic_root, PASSWORDS)
    try:
        yield broker
    finally:
        broker.broker.close()


class IngestTap:
    """The ingest server's view: user ``ingest``, reading every gateway's readings."""

    def __init__(self, secure: SecureBroker, topic: str) -> None:
        loop = asyncio.get_running_loop()
        self.messages: list[bytes] = []
        self.subscribed = asyncio.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.username_pw_set("ingest", PASSWORDS["ingest"])
        self.client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: loop.call_soon_threadsafe(self.subscribed.set)
        self.client.on_message = lambda _c, _u, m: loop.call_soon_threadsafe(
            self.messages.append, m.payload
        )
        endpoint = secure.broker.endpoint
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()

    def readings(self) -> list:
        return [r for m in self.messages for r in ReadingsMessage.from_bytes(m).readings]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def _forward_for(outbox, publisher, topic, seconds: float, gateway_id="gw-a") -> None:
    task = asyncio.create_task(
        forward_forever(
            outbox,
            publisher,
            gateway_id=gateway_id,
            topic=topic,
            batch_size=10,
            backoff=Backoff(0.05, 0.2),
        )
    )
    await asyncio.sleep(seconds)
    task.cancel()


async def test_a_gateway_with_its_password_delivers_on_its_own_prefix(secure, topic_root, tmp_path):
    secret = tmp_path / "mqtt-password"
    secret.write_text(PASSWORDS["gw-a"] + "\n")
    settings = GatewaySettings(gateway_id="gw-a", mqtt_password_file=secret)
    security = settings.mqtt_security()
    assert security.username == "gw-a"  # the gateway id, which the ACL's %u matches
    assert PASSWORDS["gw-a"] not in repr(security)

    topic = readings_topic("gw-a", topic_root)
    tap = IngestTap(secure, topic)
    await asyncio.wait_for(tap.subscribed.wait(), 5)
    readings = [make_reading(i) for i in range(3)]
    try:
        async with (
            Outbox(tmp_path / "o.sqlite3") as outbox,
            MqttPublisher(secure.url, client_id="gateway-gw-a", security=security) as publisher,
        ):
            await outbox.put_many(readings)
            task = asyncio.create_task(
                forward_forever(
                    outbox, publisher, gateway_id="gw-a", topic=topic, batch_size=10,
                    backoff=Backoff(0.05, 0.2),
                )
            )  # fmt: skip
            try:
                async with asyncio.timeout(10):
                    while len(tap.readings()) < 3 or await outbox.depth():
                        await asyncio.sleep(0.05)
            finally:
                task.cancel()
    finally:
        tap.close()
    assert tap.readings() == readings


async def test_a_wrong_password_is_refused_retried_with_backoff_and_keeps_the_readings(
    secure, topic_root, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="gateway.mqtt")
    security = MqttSecurity(username="gw-a", password="not-the-password")
    async with (
        Outbox(tmp_path / "o.sqlite3") as outbox,
        MqttPublisher(
            secure.url, client_id="gateway-gw-a-wrong", security=security,
            backoff=Backoff(0.1, 0.4),
        ) as publisher,
    ):  # fmt: skip
        await outbox.put_many([make_reading(i) for i in range(3)])
        with pytest.raises(BrokerRefused) as refused:
            await publisher.publish(readings_topic("gw-a", topic_root), b"x", timeout=2)
        assert re.search("Bad user name or password|Not authorized", str(refused.value))
        assert refused.value.last_error == publisher.last_error
        await _forward_for(outbox, publisher, readings_topic("gw-a", topic_root), 1.5)
        assert await outbox.depth() == 3  # nothing lost, nothing sent
        assert not publisher.connected
    attempts = [r for r in caplog.records if "refused" in r.getMessage()]
    delays = [
        float(m.group(1))
        for r in caplog.records
        if (m := re.search(r"next connection attempt .* in ([\d.]+)s", r.getMessage()))
    ]
    assert len(attempts) >= 3, "the gateway keeps trying"
    assert delays and all(0.05 <= d <= 0.4 for d in delays), delays  # our back-off, not paho's


async def test_publishing_under_another_gateways_prefix_is_refused_and_kept(
    secure, topic_root, tmp_path
):
    security = MqttSecurity(username="gw-a", password=PASSWORDS["gw-a"])
    async with (
        Outbox(tmp_path / "o.sqlite3") as outbox,
        MqttPublisher(secure.url, client_id="gateway-gw-a-2", security=security) as publisher,
    ):
        with pytest.raises(PublishRefused, match="Not authorized"):
            await publisher.publish(readings_topic("gw-b", topic_root), b"x", timeout=5)
        await outbox.put_many([make_reading(i) for i in range(4)])
        await _forward_for(outbox, publisher, readings_topic("gw-b", topic_root), 1.0)
        assert await outbox.depth() == 4  # refused, never deleted
        # The same session goes on publishing where it may.
        await publisher.publish(readings_topic("gw-a", topic_root), b"x", timeout=5)


async def test_client_certificate_is_the_gateways_identity(secure, topic_root, tmp_path):
    cert, key = secure.pki.client(tmp_path, "gw-b")
    security = MqttSecurity(ca_file=secure.pki.ca, cert_file=cert, key_file=key)
    async with MqttPublisher(
        secure.tls_url, client_id="gateway-gw-b", security=security
    ) as publisher:
        await publisher.publish(readings_topic("gw-b", topic_root), b"ok", timeout=5)
        with pytest.raises(PublishRefused, match="Not authorized"):
            await publisher.publish(readings_topic("gw-a", topic_root), b"x", timeout=5)


@pytest.mark.parametrize("case", ["wrong CA", "no client certificate"])
async def test_tls_that_does_not_verify_never_connects(secure, tmp_path, case):
    if case == "wrong CA":
        cert, key = secure.pki.client(tmp_path, "gw-a")
        security = MqttSecurity(ca_file=secure.pki.rogue_ca, cert_file=cert, key_file=key)
        expected = "CERTIFICATE_VERIFY_FAILED"
    else:
        security = MqttSecurity(ca_file=secure.pki.ca)
        expected = "before answering CONNECT .*TLS client certificate"
    async with MqttPublisher(
        secure.tls_url, client_id=f"gateway-tls-{case[:5]}", security=security,
        backoff=Backoff(0.1, 0.3),
    ) as publisher:  # fmt: skip
        with pytest.raises(NotConnected) as failed:
            await publisher.publish("x", b"y", timeout=2)
    assert not isinstance(failed.value, BrokerRefused)
    assert re.search(expected, str(failed.value), re.IGNORECASE), str(failed.value)
