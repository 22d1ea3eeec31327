"""The one entry point of paho-mqtt: a subscriber that acknowledges only when told to.

paho runs its network loop on its own thread; every received message is handed to the asyncio
loop through a bounded ``Inbox`` (which blocks that thread, and so the socket, when full), and
``release()`` sends the PUBACK later, after the database commit (``manual_ack=True``), and frees
the message's slot. Persistent session: MQTT 5 ``clean_start`` False with a session expiry
interval (3.1.1: ``clean_session`` False), so messages that arrive while we are away, and
messages we received but never acknowledged, are delivered again.

A PUBACK only means something on the connection the message arrived on: after a reconnect the
broker redelivers what we had not acknowledged (with new packet ids), so an ``ack()`` for a
message of an earlier connection is not sent (the redelivered copy is stored as a duplicate and
acknowledged instead).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest_server.errors import IngestError
from ingest_server.inbox import Inbox, InboxClosed
from ingest_server.settings import IngestSettings

log = logging.getLogger(__name__)

_STOP_TIMEOUT_S = 10.0


class MqttError(IngestError):
    """The MQTT client could not be set up or stopped."""


@dataclass(frozen=True, slots=True)
class InboundMessage:
    topic: str
    payload: bytes
    mid: int
    qos: int
    dup: bool
    #: Which connection it arrived on (``ack`` is only sent on that same connection).
    connection: int


class MqttSubscriber:
    """``async with MqttSubscriber(settings, subscription) as sub``; messages come on
    ``sub.inbox`` (at most ``settings.receive_maximum`` held at once).

    Give each back with ``sub.release(message)`` once it is safely stored (acknowledged), or with
    ``ack=False`` to leave it to the broker's redelivery.
    """

    def __init__(self, settings: IngestSettings, subscription: str) -> None:
        self._settings = settings
        self._subscription = subscription
        self._v5 = settings.mqtt_protocol == "5"
        self.inbox: Inbox[InboundMessage] = Inbox(
            settings.receive_maximum, settings.receive_max_bytes
        )
        self._connection = 0  # written on paho's thread, read on the loop: an int is atomic
        self._subscribed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: paho.Client | None = None

    async def __aenter__(self) -> MqttSubscriber:
        self._loop = asyncio.get_running_loop()
        self.inbox.bind(self._loop)
        s = self._settings
        endpoint = s.mqtt_endpoint()
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=None if self._v5 else False,
            protocol=MQTTProtocolVersion.MQTTv5 if self._v5 else MQTTProtocolVersion.MQTTv311,
            manual_ack=True,
        )
        if log.isEnabledFor(logging.DEBUG):
            # paho's own log is for debugging: at INFO it reports a clean stop as an ERROR.
            client.enable_logger(logging.getLogger("paho.mqtt"))
        if endpoint.username:
            client.username_pw_set(endpoint.username, endpoint.password)
        client.reconnect_delay_set(s.reconnect_min_delay_s, s.reconnect_max_delay_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        properties = None
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = s.session_expiry_s
            # The broker's bound while nothing is acknowledged (e.g. the database is down); the
            # inbox is ours the rest of the time (see ingest_server.inbox on Mosquitto 2.0).
            properties.ReceiveMaximum = s.receive_maximum
        try:
            if self._v5:
                client.connect_async(
                    endpoint.host,
                    endpoint.port,
                    s.keepalive_s,
                    clean_start=False,
                    properties=properties,
                )
            else:
                client.connect_async(endpoint.host, endpoint.port, s.keepalive_s)
        except (OSError, ValueError) as exc:
            raise MqttError(f"cannot connect to {s.mqtt_url}: {exc}") from exc
        self._client = client
        if client.loop_start() != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttError("paho network thread did not start")
        log.info(
            "MQTT %s client %r connecting to %s:%d, subscription %r",
            s.mqtt_protocol,
            s.client_id,
            endpoint.host,
            endpoint.port,
            self._subscription,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        client.disconnect()
        self.inbox.close()  # a network thread waiting for a slot must not hold loop_stop up
        try:
            await asyncio.wait_for(asyncio.to_thread(client.loop_stop), _STOP_TIMEOUT_S)
        except TimeoutError:
            log.error("paho network thread did not stop within %.0f s", _STOP_TIMEOUT_S)
        self._subscribed.clear()

    async def wait_subscribed(self) -> None:
        """Until the broker acknowledges the subscription (callers bound it with a timeout)."""
        await self._subscribed.wait()

    def is_current(self, message: InboundMessage) -> bool:
        """Whether ``message`` came on the current connection (only then can it be acknowledged)."""
        return message.connection == self._connection

    def release(self, message: InboundMessage, *, ack: bool = True) -> bool:
        """Done with ``message``: send its PUBACK (with ``ack``) and free its slot. False when
        it was not acknowledged (``ack=False``, or it came on an earlier connection)."""
        try:
            return ack and self._ack(message)
        finally:
            self.inbox.done(len(message.payload))

    def _ack(self, message: InboundMessage) -> bool:
        if self._client is None or message.connection != self._connection:
            log.info(
                "not acknowledging mid %d from an earlier connection: the broker redelivers it",
                message.mid,
            )
            return False
        rc = self._client.ack(message.mid, message.qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.warning("PUBACK of mid %d not sent: %s", message.mid, paho.error_string(rc))
            return False
        return True

    # --- paho callbacks: run on paho's network thread; an exception there would kill it ----------

    def _on_connect(
        self, client: paho.Client, _userdata: Any, flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        try:
            if reason.is_failure:
                log.error("MQTT connection refused: %s", reason)
                return
            self._connection += 1
            log.info(
                "MQTT connected (session present: %s); subscribing to %r",
                flags.session_present,
                self._subscription,
            )
            client.subscribe(self._subscription, qos=1)
        except Exception:
            log.exception("error in MQTT on_connect")

    def _on_subscribe(
        self, _client: paho.Client, _userdata: Any, mid: int, reasons: list[ReasonCode], _p: Any
    ) -> None:
        try:
            failed = [r for r in reasons if r.is_failure]
            if failed:
                log.error("subscription to %r refused: %s", self._subscription, failed)
                return
            log.info("subscribed to %r (granted %s)", self._subscription, reasons)
            self._call(self._subscribed.set)
        except Exception:
            log.exception("error in MQTT on_subscribe")

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _p: Any
    ) -> None:
        try:
            self._call(self._subscribed.clear)
            if reason.is_failure or reason.value != 0:
                log.warning("MQTT disconnected (%s); paho reconnects", reason)
            else:
                log.info("MQTT disconnected")
        except Exception:
            log.exception("error in MQTT on_disconnect")

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            try:
                topic = msg.topic
            except UnicodeDecodeError:
                topic = f"<invalid UTF-8 topic {msg._topic!r}>"
            inbound = InboundMessage(
                topic=topic,
                payload=bytes(msg.payload),
                mid=msg.mid,
                qos=msg.qos,
                dup=bool(msg.dup),
                connection=self._connection,
            )
            # Blocks while the inbox is full: back-pressure on the socket.
            self.inbox.put(inbound, len(inbound.payload))
        except InboxClosed:
            log.info("stopping: message mid %s left to the broker's redelivery", msg.mid)
        except Exception:
            log.exception("error handing MQTT message mid %s to the event loop", msg.mid)

    def _call(self, callback: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            log.warning(
                "event loop gone; dropping MQTT event %s", getattr(callback, "__name__", "")
            )
            return
        loop.call_soon_threadsafe(callback, *args)
