"""Helpers of the scale tests: a TCP proxy that can cut the database off, bound patients, bulk
publishing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from homewatch import wire
from ingest_server import db, store
from tests.integration.ingest.ingest_support import device, minutes_ago, unique


class TcpProxy:
    """Forwards a local port to ``target``; ``stop()`` cuts every connection and refuses new ones
    (as a database host that went away), ``start()`` serves again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()


def via_proxy(database_url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(database_url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


async def bound_devices(
    pool: db.Pool, n: int, since: datetime | None = None
) -> list[tuple[str, wire.DeviceIdentity]]:
    """``n`` patients, each with a cuff bound from ``since`` (default 30 days ago)."""
    out = []
    async with db.connection(pool) as conn:
        for _ in range(n):
            patient_id, cuff = unique("patient"), device(unique("SN"))
            await store.create_patient(conn, patient_id, "Scale Test")
            await store.bind_device(
                conn, cuff.device_key, patient_id, since or minutes_ago(30 * 24 * 60)
            )
            out.append((patient_id, cuff))
    return out


def publish_many(
    host: str, port: int, messages: Sequence[tuple[str, bytes]], timeout: float = 30.0
) -> None:
    """Publish (topic, payload) pairs at QoS 1, many in flight, and wait for every PUBACK."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=unique("hwtest-bulk"),
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout)
            assert info.is_published(), "a publish got no PUBACK"
    finally:
        client.disconnect()
        client.loop_stop()


async def publish_many_async(host: str, port: int, messages: Sequence[tuple[str, bytes]]) -> None:
    await asyncio.wait_for(asyncio.to_thread(publish_many, host, port, messages), 60)


def spread(start: datetime, n: int, step: timedelta) -> list[datetime]:
    return [start + i * step for i in range(n)]
