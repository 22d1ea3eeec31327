"""The MQTT consumer: batch, validate, store, commit, and only then acknowledge.

Workers take turns forming a batch (``batching``) and store it in one transaction
(``batch_store``); while one stores, the next batch fills. Every message ends in exactly one of
two ways: stored (its readings, or the quarantine row saying why not) and acknowledged after the
commit; or, while the database is unavailable, retried with jittered back-off and never
acknowledged. Nothing is dropped: a message that is not acknowledged is delivered again by the
broker (persistent session). While a batch waits for the database, its messages keep their slots
in the inbox: once ``receive_maximum`` messages are held, the consumer takes no more.

A batch the database refuses for its content, or that trips a defect of ours, is split and its
messages stored one by one, so that only the culprit is quarantined ("rejected by database",
"processing failed") and the rest goes through.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from homewatch import wire
from ingest_server import batch_store, db
from ingest_server.batching import Batch, Batcher
from ingest_server.errors import (
    DatabaseError,
    DatabaseRejected,
    DatabaseUnavailable,
    InvalidMessage,
)
from ingest_server.mqtt import InboundMessage, MqttSubscriber
from ingest_server.results import StoreResult
from ingest_server.settings import IngestSettings
from ingest_server.validate import QuarantineReason

log = logging.getLogger(__name__)

OnResult = Callable[[StoreResult], Awaitable[None]]
_HEX_PREVIEW = 64
_STOP_TIMEOUT_S = 10.0


@dataclass(slots=True)
class ConsumerStats:
    received: int = 0  # messages taken from the broker (redeliveries count again)
    acked: int = 0  # messages acknowledged after their commit
    stored: int = 0  # new readings stored (every kind)
    stored_glucose: int = 0  # of which glucose readings
    duplicates: int = 0  # readings already stored (redelivery)
    quarantined: int = 0  # messages or readings set aside
    alerts_raised: int = 0
    alerts_updated: int = 0
    errors: int = 0  # failed attempts (database unavailable, hook failures, defects)
    batches: int = 0  # transactions committed
    split_batches: int = 0  # batches stored message by message after a failure

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Consumer:
    """``async with Consumer(settings, pool) as consumer:`` consumes until the block exits.

    ``pool`` is an open ``db.Pool``; ``on_result`` is awaited after each acknowledged message.
    """

    def __init__(
        self, settings: IngestSettings, pool: db.Pool, *, on_result: OnResult | None = None
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._on_result = on_result
        self.stats = ConsumerStats()
        self.subscription = wire.readings_subscription(settings.shared_group, settings.topic_root)
        self._subscriber = MqttSubscriber(settings, self.subscription)
        self._batcher = Batcher(
            self._subscriber,
            topic_root=settings.topic_root,
            max_messages=settings.batch_max_messages,
            max_readings=settings.batch_max_readings,
            max_delay_s=settings.batch_max_delay_s,
        )
        self._forming = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Consumer:
        await self._subscriber.__aenter__()
        self._tasks = [
            asyncio.create_task(self._work(), name=f"ingest-worker-{n}")
            for n in range(self._settings.workers)
        ]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        tasks, self._tasks = self._tasks, []
        try:
            for task in tasks:
                task.cancel()
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=_STOP_TIMEOUT_S)
                if pending:
                    log.error("%d ingest workers did not stop in time", len(pending))
        finally:
            await self._subscriber.__aexit__(None, None, None)

    async def wait_subscribed(self) -> None:
        """Until the broker has acknowledged our subscription (wrap it in ``asyncio.timeout``)."""
        await self._subscriber.wait_subscribed()

    @property
    def idle(self) -> bool:
        """No message held: none queued, batched or being stored (the demo drains on it)."""
        return self._subscriber.inbox.held == 0

    @property
    def held(self) -> int:
        """Messages received and not yet acknowledged (or given back)."""
        return self._subscriber.inbox.held

    @property
    def peak_held(self) -> int:
        """The most messages ever held at once (bounded by ``receive_maximum``)."""
        return self._subscriber.inbox.peak_held

    def counters_snapshot(self) -> dict[str, int]:
        return {
            **self.stats.as_dict(),
            "held": self.held,
            "peak_held": self.peak_held,
            "stale": self._batcher.stale,
        }

    # --- workers -------------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            async with self._forming:  # one worker fills a batch while the others store theirs
                batch = await self._batcher.next_batch()
            self.stats.received += len(batch)
            try:
                results = await self._store(batch)
            except asyncio.CancelledError:
                self._give_back(batch.messages)
                raise
            except Exception:
                # Not expected (``_store`` handles what it knows); never let a worker die. The
                # messages stay unacknowledged and come back when the session reconnects.
                self.stats.errors += 1
                log.exception("unexpected error storing a batch of %d messages", len(batch))
                self._give_back(batch.messages)
                continue
            await self._finish(batch.messages, results)

    def _give_back(self, messages: list[InboundMessage]) -> None:
        for message in messages:
            self._subscriber.release(message, ack=False)

    async def _store(self, batch: Batch) -> list[StoreResult]:
        """Store ``batch`` (committed on return), retrying while the database is unavailable."""
        try:
            return await self._retrying(batch.items)
        except DatabaseRejected as exc:
            problem: Exception = exc
        except Exception as exc:  # a defect of ours (or of the rules): find the message
            log.exception("storing a batch of %d messages failed", len(batch))
            problem = exc
        if len(batch) == 1:
            return [await self._quarantine_failed(batch.items[0], problem)]
        self.stats.split_batches += 1
        log.warning("storing the %d messages of a failed batch one by one", len(batch))
        results = []
        for item in batch.items:
            try:
                [result] = await self._retrying([item])
            except Exception as exc:
                if not isinstance(exc, DatabaseRejected):
                    log.exception("storing a message from %s failed", item.topic)
                result = await self._quarantine_failed(item, exc)
            results.append(result)
        return results

    async def _retrying(self, items: list[batch_store.Incoming]) -> list[StoreResult]:
        """Store ``items`` in one transaction, retrying with back-off while the database fails
        for reasons of its own: unavailable, or an error that is not about the data (a missing
        table during a deployment, say: waiting, loudly, beats quarantining every message)."""
        attempt = 0
        while True:
            try:
                async with db.connection(self._pool) as conn:
                    results = await batch_store.store_batch(conn, items)
                self.stats.batches += 1
                return results
            except DatabaseRejected:
                raise
            except DatabaseError as exc:
                self.stats.errors += 1
                delay = self._backoff(attempt)
                attempt += 1
                log.log(
                    logging.WARNING if isinstance(exc, DatabaseUnavailable) else logging.ERROR,
                    "database failed on a batch of %d messages (attempt %d): %s;"
                    " not acknowledged, retrying in %.2f s",
                    len(items),
                    attempt,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _quarantine_failed(
        self, item: batch_store.Incoming, problem: Exception
    ) -> StoreResult:
        reason = (
            QuarantineReason.REJECTED
            if isinstance(problem, DatabaseRejected)
            else QuarantineReason.PROCESSING_FAILED
        )
        detail = str(problem) if reason is QuarantineReason.REJECTED else repr(problem)
        self.stats.errors += 1
        log.warning(
            "quarantining a message from %s: %s: %s (payload %d bytes, starts %s)",
            item.topic,
            reason,
            detail,
            len(item.payload),
            item.payload[:_HEX_PREVIEW].hex(),
        )
        aside = batch_store.Incoming(
            topic=item.topic,
            payload=item.payload,
            invalid=InvalidMessage(reason, detail[:2000]),
            gateway_id=item.gateway_id,
        )
        [result] = await self._retrying([aside])
        return result

    async def _finish(self, messages: list[InboundMessage], results: list[StoreResult]) -> None:
        for message, result in zip(messages, results, strict=True):
            if self._subscriber.release(message):
                self.stats.acked += 1
            self._count(result)
        if self._on_result is None:
            return
        for message, result in zip(messages, results, strict=True):
            try:
                await self._on_result(result)
            except Exception:
                self.stats.errors += 1
                log.exception("on_result hook failed for mid %d", message.mid)

    def _count(self, result: StoreResult) -> None:
        self.stats.stored += result.stored
        self.stats.stored_glucose += result.stored_glucose
        self.stats.duplicates += result.duplicates
        self.stats.quarantined += result.quarantined
        self.stats.alerts_raised += result.alerts_raised
        self.stats.alerts_updated += result.alerts_updated

    def _backoff(self, attempt: int) -> float:
        s = self._settings
        ceiling = min(s.db_retry_max_s, s.db_retry_min_s * 2**attempt)
        return random.uniform(s.db_retry_min_s, max(s.db_retry_min_s, ceiling))
