"""The gateway's one entry point to MQTT: an asyncio publisher over paho-mqtt 2.x.

Why paho and not aiomqtt: ``aiomqtt.Client.publish`` ignores the PUBACK reason code (its
``_on_publish`` drops it), so a broker that refuses a message — not authorised, quota exceeded,
payload too large — would look like a delivery, and the gateway would delete a reading it never
handed over. Here a refusal raises ``PublishRefused`` and the reading stays in the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Literal
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

#: How long the broker keeps the gateway's session (and its in-flight QoS-1 state) while offline.
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600


class MqttError(Exception):
    """Root of the gateway's MQTT errors."""


class PublishFailed(MqttError):
    """The message may not have reached the broker (no connection, or no PUBACK in time)."""


class PublishRefused(MqttError):
    """The broker answered the PUBLISH with a failure reason code."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"broker refused a message on {topic!r}: {reason}")
        self.topic = topic
        self.reason = reason


def parse_mqtt_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "tcp"} or not parts.hostname:
        raise ValueError(f"not an MQTT URL (mqtt://host:port): {url!r}")
    return parts.hostname, parts.port or 1883


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
    ) -> None:
        self._host, self._port = parse_mqtt_url(url)
        self._v5 = protocol == "5"
        self._keepalive = keepalive
        self._client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"homewatch-gw-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5 if self._v5 else paho.MQTTv311,
            clean_session=None if self._v5 else False,
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        self._pending: dict[int, asyncio.Future[None]] = {}

    async def __aenter__(self) -> MqttPublisher:
        self._loop = asyncio.get_running_loop()
        properties = None
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        self._client.connect_async(
            self._host,
            self._port,
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
            raise PublishFailed(
                f"no connection to {self._host}:{self._port} within {timeout}s"
            ) from None

    async def publish(self, topic: str, payload: bytes, *, timeout: float = 15.0) -> None:
        """Publish with QoS 1; return once the broker has acknowledged it with success."""
        await self.wait_connected(timeout)
        info = self._client.publish(topic, payload, qos=1)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise PublishFailed(f"cannot publish on {topic!r}: {paho.error_string(info.rc)}")
        # Registered before the next await: the PUBACK callback reaches us only through the loop.
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

    def _on_connect(self, client, userdata, flags, reason_code: ReasonCode, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT connection to %s:%s refused: %s", self._host, self._port, reason_code)
            return
        log.info(
            "MQTT connected to %s:%s (session present: %s)",
            self._host,
            self._port,
            flags.session_present,
        )
        self._call(self._connected.set)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        level = logging.INFO if not reason_code.is_failure else logging.WARNING
        log.log(level, "MQTT disconnected from %s:%s: %s", self._host, self._port, reason_code)
        self._call(self._connected.clear)

    def _on_publish(self, client, userdata, mid: int, reason_code: ReasonCode, properties) -> None:
        self._call(self._settle, mid, None if not reason_code.is_failure else str(reason_code))

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
