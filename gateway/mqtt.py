"""The gateway's one entry point to MQTT: an asyncio client over paho-mqtt 2.x.

Why paho and not aiomqtt: ``aiomqtt.Client.publish`` ignores the PUBACK reason code (its
``_on_publish`` drops it), so a broker that refuses a message — not authorised, quota exceeded,
payload too large — would look like a delivery, and the gateway would delete a reading it never
handed over. Here a refusal raises ``PublishRefused`` and the reading stays in the outbox. That
check needs MQTT 5: under 3.1.1 Mosquitto answers a publish its ACL denies with a plain PUBACK and
drops the message (eclipse-mosquitto/mosquitto#547), so 3.1.1 is for brokers without 5 only.

What this module adds to paho, and why:

* **Reconnect with jittered back-off.** paho doubles its delay from ``min_delay`` to
  ``max_delay`` with no jitter, so every gateway of a region that lost the same broker comes back
  in lock-step. Before each of paho's waits (``on_disconnect`` / ``on_connect_fail``) the delay
  is set to the next value of ``gateway.backoff.Backoff`` (full jitter); a CONNACK success
  resets it.
* **Flow control.** paho never reads the broker's Receive Maximum from CONNACK; ``publish`` keeps
  at most ``min(max_inflight, Receive Maximum)`` QoS-1 messages unacknowledged.
* **Credentials and TLS** (``MqttSecurity``): username/password, a CA, a client certificate.
  A refused CONNACK or a TLS failure is kept as ``last_error`` and surfaces as ``BrokerRefused``
  / ``NotConnected`` from ``publish`` instead of a silent wait.
* **A Will** (the retained "offline" status) and subscriptions that are renewed on every connect.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.backoff import Backoff

log = logging.getLogger(__name__)

#: How long the broker keeps the gateway's session (and its in-flight QoS-1 state) while offline.
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
#: Messages the broker may send us unacknowledged (only the small config topic comes this way).
RECEIVE_MAXIMUM = 10

#: Called on the event loop with (topic, payload) for each message on a subscribed topic.
MessageHandler = Callable[[str, bytes], None]


class MqttError(Exception):
    """Root of the gateway's MQTT errors."""


class PublishFailed(MqttError):
    """The message may not have reached the broker (no connection, or no PUBACK in time)."""


class NotConnected(PublishFailed):
    """No connection to the broker in time; ``last_error`` says why the last attempt failed."""

    def __init__(self, broker: str, timeout: float, last_error: str | None) -> None:
        why = f": {last_error}" if last_error else ""
        super().__init__(f"no connection to {broker} within {timeout}s{why}")
        self.broker = broker
        self.last_error = last_error


class BrokerRefused(NotConnected):
    """The broker answered CONNECT with a failure (bad user name or password, not authorised)."""


class PublishRefused(MqttError):
    """The broker answered the PUBLISH with a failure reason code."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"broker refused a message on {topic!r}: {reason}")
        self.topic = topic
        self.reason = reason


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> tuple[str, int]:
    """Host and port of ``mqtt://host:port`` or ``mqtts://host:port`` (TLS, default 8883)."""
    address = parse_broker_url(url)
    return address.host, address.port


def parse_broker_url(url: str) -> BrokerAddress:
    parts = urlsplit(url)
    tls = parts.scheme in {"mqtts", "ssl"}
    if parts.scheme not in {"mqtt", "tcp", "mqtts", "ssl"} or not parts.hostname:
        raise ValueError(f"not an MQTT URL (mqtt://host:port or mqtts://host:port): {url!r}")
    if parts.username or parts.password:
        raise ValueError("put MQTT credentials in the settings, not in the URL")
    return BrokerAddress(parts.hostname, parts.port or (8883 if tls else 1883), tls)


@dataclass(frozen=True, slots=True)
class MqttSecurity:
    """Per-gateway credentials. The password comes from the environment or a file outside the
    repository (``GatewaySettings.mqtt_password_file``), never from the code."""

    username: str | None = None
    password: str | None = None
    #: CA bundle that signed the broker's certificate (None with TLS: the system's CAs).
    ca_file: Path | None = None
    #: Client certificate and key (PEM) for brokers that authenticate gateways by certificate.
    cert_file: Path | None = None
    key_file: Path | None = None

    def __repr__(self) -> str:  # never print the password
        return (
            f"MqttSecurity(username={self.username!r}, password={'***' if self.password else None},"
            f" ca_file={self.ca_file}, cert_file={self.cert_file}, key_file={self.key_file})"
        )

    def tls_context(self) -> ssl.SSLContext:
        """A verifying TLS context; bad files fail here, at start-up, with the file named."""
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )
        context.sslsocket_class = _ClosingSSLSocket
        if self.cert_file is not None:
            context.load_cert_chain(
                str(self.cert_file), str(self.key_file) if self.key_file else None
            )
        return context


class _ClosingSSLSocket(ssl.SSLSocket):
    """paho 2.2 leaves the socket of a failed TLS handshake open (a file descriptor lost on every
    attempt, e.g. with a wrong CA, until the garbage collector finds it): close it here."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


@dataclass(frozen=True, slots=True)
class Will:
    """What the broker publishes for us when the connection is lost without a DISCONNECT."""

    topic: str
    payload: bytes
    retain: bool = True


class _InflightLimit:
    """At most ``limit`` holders at once; the limit can change (the broker's Receive Maximum is
    known only after CONNACK). Used on the event loop only."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._waiters: list[asyncio.Future[None]] = []

    async def __aenter__(self) -> None:
        while self._used >= self.limit:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            finally:
                if fut in self._waiters:
                    self._waiters.remove(fut)
        self._used += 1

    async def __aexit__(self, *exc_info: object) -> None:
        self._used -= 1
        self._wake()

    def set_limit(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._wake()

    def _wake(self) -> None:
        # Every waiter checks again; few ever wait (the forwarder publishes one batch at a time).
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()


class MqttPublisher:
    """QoS-1 publishing that completes only when the broker has accepted the message.

    paho's network thread runs the socket; its callbacks hand results to the event loop with
    ``call_soon_threadsafe``. The session persists (clean start off), so paho re-sends
    unacknowledged messages itself after a reconnect.
    """

    def __init__(
        self,
        url: str,
        *,
        client_id: str | None = None,
        protocol: Literal["5", "3.1.1"] = "5",
        keepalive: int = 30,
        security: MqttSecurity | None = None,
        will: Will | None = None,
        max_inflight: int = 20,
        backoff: Backoff | None = None,
        publish_timeout: float | None = None,
    ) -> None:
        self.broker = parse_broker_url(url)
        self._v5 = protocol == "5"
        self._keepalive = keepalive
        self._security = security or MqttSecurity()
        self._backoff = backoff or Backoff(1.0, 30.0)
        #: A silently dead link is noticed by the keep-alive (about 1.5 x keepalive); waiting for
        #: a PUBACK longer than that lets paho re-send the message on the new connection instead
        #: of the forwarder publishing a second copy.
        self.publish_timeout = publish_timeout or 2.0 * keepalive + 5.0
        self._client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"homewatch-gw-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5 if self._v5 else paho.MQTTv311,
            clean_session=None if self._v5 else False,
        )
        if not self._v5 and (self._security.username or self._security.cert_file):
            log.warning(
                "MQTT 3.1.1: a publish the broker's ACL refuses is acknowledged like a delivery "
                "and lost; use MQTT 5 wherever the broker supports it"
            )
        self._client.max_inflight_messages = max_inflight
        self._inflight = _InflightLimit(max_inflight)
        self._max_inflight = max_inflight
        self._client.reconnect_delay_set(min_delay=1, max_delay=1)  # replaced before each wait
        if self._security.username is not None:
            self._client.username_pw_set(self._security.username, self._security.password)
        if self.broker.tls:
            self._client.tls_set_context(self._security.tls_context())
        if will is not None:
            self._client.will_set(will.topic, will.payload, qos=1, retain=will.retain)
        self._client.on_pre_connect = self._on_pre_connect
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._subscriptions: dict[str, MessageHandler] = {}
        self._listeners: list[Callable[[bool], None]] = []
        #: Why the last connection attempt failed or the last connection ended (None: it is up).
        self.last_error: str | None = None
        self._refused = False
        self._connack_pending = False
        #: The broker's Receive Maximum from the last CONNACK (None: not given, 65535).
        self.server_receive_maximum: int | None = None
        self.connections = 0

    async def __aenter__(self) -> MqttPublisher:
        self._loop = asyncio.get_running_loop()
        properties = None
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
            properties.ReceiveMaximum = RECEIVE_MAXIMUM
        self._client.connect_async(
            self.broker.host,
            self.broker.port,
            keepalive=self._keepalive,
            clean_start=False if self._v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self._client.loop_start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        for fut in self._pending.values():
            fut.cancel()
        self._pending.clear()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            error = BrokerRefused if self._refused else NotConnected
            raise error(str(self.broker), timeout, self.last_error) from None

    def on_connection_change(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(connected)`` on the event loop after every successful (re)connection
        and every lost connection or failed attempt."""
        self._listeners.append(listener)

    def subscribe(self, topic: str, handler: MessageHandler) -> None:
        """Subscribe with QoS 1 now (when connected) and again on every reconnection, which also
        brings the topic's retained message again; ``handler`` runs on the event loop."""
        self._subscriptions[topic] = handler
        if self.connected:
            self._client.subscribe(topic, qos=1)

    async def publish(
        self, topic: str, payload: bytes, *, retain: bool = False, timeout: float | None = None
    ) -> None:
        """Publish with QoS 1; return once the broker has acknowledged it with success."""
        timeout = self.publish_timeout if timeout is None else timeout
        async with self._inflight:
            await self.wait_connected(timeout)
            info = self._client.publish(topic, payload, qos=1, retain=retain)
            if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
                raise PublishFailed(f"cannot publish on {topic!r}: {paho.error_string(info.rc)}")
            # Registered before the next await: the PUBACK reaches us only through the loop.
            fut = asyncio.get_running_loop().create_future()
            self._pending[info.mid] = fut
            try:
                await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                raise PublishFailed(f"no PUBACK for {topic!r} within {timeout}s") from None
            except PublishRefused as exc:
                raise PublishRefused(topic, exc.reason) from None
            finally:
                self._pending.pop(info.mid, None)

    # --- paho network thread ---------------------------------------------------------------

    def _on_pre_connect(self, client, userdata) -> None:
        self._connack_pending = True

    def _on_connect(self, client, userdata, flags, reason_code: ReasonCode, properties) -> None:
        self._connack_pending = False
        if reason_code.is_failure:
            self.last_error = f"the broker refused the connection: {reason_code}"
            self._refused = True
            log.error("MQTT connection to %s refused: %s", self.broker, reason_code)
            self._call(self._connection_changed, False)
            return
        self._backoff.reset()
        self.last_error = None
        self._refused = False
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        self.server_receive_maximum = receive_maximum
        self.connections += 1
        log.info(
            "MQTT connected to %s (session present: %s, broker receive maximum: %s)",
            self.broker,
            flags.session_present,
            receive_maximum or "65535",
        )
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        limit = min(self._max_inflight, receive_maximum or self._max_inflight)
        self._call(self._connected_on_loop, limit)

    def _connected_on_loop(self, limit: int) -> None:
        self._inflight.set_limit(limit)
        self._connection_changed(True)

    def _connection_changed(self, connected: bool) -> None:
        if connected:
            self._connected.set()
        else:
            self._connected.clear()
        for listener in self._listeners:
            try:
                listener(connected)
            except Exception:
                log.exception("MQTT connection listener failed")

    def _on_connect_fail(self, client, userdata) -> None:
        # Called by paho inside its ``except OSError`` (refused TCP connect, TLS handshake
        # failure, DNS): the exception being handled says why.
        exc = sys.exception()
        self.last_error = f"{type(exc).__name__}: {exc}" if exc else "connection failed"
        self._refused = False
        self._connack_pending = False
        self._call(self._connection_changed, False)
        self._schedule_reconnect(self.last_error)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._connack_pending:
            self._connack_pending = False
            self._refused = False
            self.last_error = (
                "the broker closed the connection before answering CONNECT (does it require a "
                "TLS client certificate, or is this port for another protocol?)"
            )
        elif reason_code.is_failure and not self._refused:
            self.last_error = f"connection lost: {reason_code}"
        level = logging.WARNING if reason_code.is_failure else logging.INFO
        log.log(level, "MQTT disconnected from %s: %s", self.broker, reason_code)
        self._call(self._connection_changed, False)
        if reason_code.is_failure:
            self._schedule_reconnect(str(reason_code))

    def _schedule_reconnect(self, why: str) -> None:
        # paho waits reconnect_delay (min_delay on its first wait after a reset) before trying
        # again: give it our jittered delay each time.
        delay = self._backoff.next()
        self._client.reconnect_delay_set(min_delay=delay, max_delay=delay)  # type: ignore[arg-type]
        log.info("MQTT: next connection attempt to %s in %.1fs (%s)", self.broker, delay, why)

    def _on_publish(self, client, userdata, mid: int, reason_code: ReasonCode, properties) -> None:
        self._call(self._settle, mid, None if not reason_code.is_failure else str(reason_code))

    def _on_message(self, client, userdata, message: paho.MQTTMessage) -> None:
        handler = self._subscriptions.get(message.topic)
        if handler is not None:
            self._call(handler, message.topic, bytes(message.payload))

    def _call(self, func, *args) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(func, *args)

    def _settle(self, mid: int, refusal: str | None) -> None:
        fut = self._pending.get(mid)
        if fut is None or fut.done():
            return
        if refusal is None:
            fut.set_result(None)
        else:
            fut.set_exception(PublishRefused("", refusal))
