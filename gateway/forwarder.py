"""Outbox → MQTT: oldest readings first, in batches, deleted only after the broker's PUBACK.

One batch is in flight at a time (stop-and-wait): order is kept, and a batch is deleted exactly
when its PUBACK is processed. The one window left is between the PUBACK and the commit of the
delete (a few milliseconds: the transaction's fsync): a crash there leaves the batch queued and it
is published again after the restart. That copy is harmless — every reading keeps its
deterministic id and the ingest server stores ``ON CONFLICT (reading_id) DO NOTHING`` — and no
reading is ever published again once its delete has committed.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from datetime import UTC, datetime
from typing import Protocol

from gateway.backoff import Backoff
from gateway.mqtt import MqttError, MqttPublisher, PublishRefused
from gateway.outbox import Outbox, QueuedReading
from homewatch.wire import MAX_MESSAGE_BYTES, ReadingsMessage

log = logging.getLogger(__name__)


class ForwardObserver(Protocol):
    """Told what the forwarder did (status, metrics)."""

    def published(self, readings: int, seconds: float) -> None:
        """A batch of ``readings`` was acknowledged ``seconds`` after its PUBLISH and deleted."""
        ...

    def publish_failed(self, error: MqttError) -> None: ...


async def forward_forever(
    outbox: Outbox,
    publisher: MqttPublisher,
    *,
    gateway_id: str,
    topic: str,
    batch_size: int,
    backoff: Backoff,
    observer: ForwardObserver | None = None,
) -> None:
    """Publish the outbox in order until cancelled; failures are retried, never dropped."""
    while True:
        await outbox.wait_nonempty()
        try:
            batch = await outbox.oldest(batch_size)
        except sqlite3.Error:
            log.exception("cannot read the outbox; retrying")
            await asyncio.sleep(backoff.next())
            continue
        if not batch:
            continue
        batch, payload = _fit(batch, gateway_id)
        started = time.monotonic()
        try:
            await publisher.publish(topic, payload)
        except PublishRefused as exc:
            # The broker will not take it (ACL, size, quota): an operator must act. Keep it.
            log.error("%s; %d reading(s) stay in the outbox", exc, len(batch))
            _tell(observer, "publish_failed", exc)
            await asyncio.sleep(backoff.next())
            continue
        except MqttError as exc:
            delay = backoff.next()
            log.warning(
                "publish failed (%s); retrying %d reading(s) in %.1fs", exc, len(batch), delay
            )
            _tell(observer, "publish_failed", exc)
            await asyncio.sleep(delay)
            continue
        latency = time.monotonic() - started
        backoff.reset()
        try:
            await outbox.remove([q.seq for q in batch])
        except sqlite3.Error:
            # Delivered but still queued: they go out again, and their ids make that harmless.
            log.exception("cannot remove %d delivered reading(s) from the outbox", len(batch))
        _tell(observer, "published", len(batch), latency)
        log.debug("published %d reading(s) on %s", len(batch), topic)


def _tell(observer: ForwardObserver | None, event: str, *args: object) -> None:
    if observer is None:
        return
    try:
        getattr(observer, event)(*args)
    except Exception:  # an observer's bug must not stop delivery
        log.exception("forward observer failed on %s", event)


def _fit(batch: list[QueuedReading], gateway_id: str) -> tuple[list[QueuedReading], bytes]:
    """The longest head of ``batch`` whose message stays within ``MAX_MESSAGE_BYTES``.

    An over-size message is worse than refused: Mosquitto drops the connection, and the
    session would re-send the same message after every reconnect.
    """
    while True:
        payload = ReadingsMessage(
            gateway_id=gateway_id, sent_at=datetime.now(UTC), readings=[q.reading for q in batch]
        ).to_bytes()
        if len(payload) <= MAX_MESSAGE_BYTES or len(batch) == 1:
            return batch, payload
        batch = batch[: len(batch) // 2]
