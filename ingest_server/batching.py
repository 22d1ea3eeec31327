"""Batches of messages for the write path: closed by size (messages, readings) or by time.

A batch opens with the first message that arrives and closes when it holds ``max_messages``
messages or ``max_readings`` readings, or ``max_delay_s`` after it opened, whichever comes first:
under load batches fill at once (one transaction and one COPY for hundreds of messages), a lone
message waits at most ``max_delay_s``. Messages are parsed here, against the wire contract and
their topic; one that does not parse travels in the batch with its reason, to be quarantined in
the batch's transaction. Messages left from an earlier MQTT connection are given back unread:
their acknowledgement could not be sent, and the broker delivers them again anyway.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from homewatch import wire
from ingest_server.batch_store import Incoming
from ingest_server.errors import InvalidMessage
from ingest_server.mqtt import InboundMessage, MqttSubscriber
from ingest_server.validate import parse_message

log = logging.getLogger(__name__)

#: Messages taken from the inbox at a time while a batch fills.
_STEP = 32


@dataclass(slots=True)
class Batch:
    """Messages in arrival order, each with what the write path needs of it."""

    messages: list[InboundMessage] = field(default_factory=list)
    items: list[Incoming] = field(default_factory=list)
    readings: int = 0

    def __len__(self) -> int:
        return len(self.messages)


def incoming(topic: str, payload: bytes, topic_root: str) -> Incoming:
    """A message parsed for the write path (or with the reason it is invalid)."""
    try:
        parsed = parse_message(topic, payload, topic_root)
    except InvalidMessage as exc:
        return Incoming(
            topic=topic,
            payload=payload,
            invalid=exc,
            gateway_id=wire.gateway_id_from_topic(topic, topic_root),
        )
    return Incoming(topic=topic, payload=payload, message=parsed, gateway_id=parsed.gateway_id)


class Batcher:
    """``await batcher.next_batch()``: the next batch of at least one message."""

    def __init__(
        self,
        subscriber: MqttSubscriber,
        *,
        topic_root: str,
        max_messages: int,
        max_readings: int,
        max_delay_s: float,
    ) -> None:
        self._subscriber = subscriber
        self._topic_root = topic_root
        self._max_messages = max_messages
        self._max_readings = max_readings
        self._max_delay_s = max_delay_s
        #: Messages given back because they came on an earlier connection.
        self.stale = 0

    async def next_batch(self) -> Batch:
        inbox = self._subscriber.inbox
        batch = Batch()
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while len(batch) < self._max_messages and batch.readings < self._max_readings:
            # In small steps, so that a batch of large messages stops near max_readings.
            step = min(_STEP, self._max_messages - len(batch))
            if deadline is None:
                taken = await inbox.take(step)
                deadline = loop.time() + self._max_delay_s
            else:
                taken = await inbox.take(step, max(0.0, deadline - loop.time()))
                if not taken:
                    break
            for message in taken:
                self._add(batch, message)
            if not batch.messages:
                deadline = None  # only stale ones so far: the batch has not opened yet
        return batch

    def _add(self, batch: Batch, message: InboundMessage) -> None:
        if not self._subscriber.is_current(message):
            self.stale += 1
            self._subscriber.release(message, ack=False)
            return
        item = incoming(message.topic, message.payload, self._topic_root)
        batch.messages.append(message)
        batch.items.append(item)
        batch.readings += len(item.message.readings) if item.message is not None else 1
