"""The MQTT consumer: validate, store, commit, and only then acknowledge.

Every message ends in exactly one of two ways: stored (its readings, or the quarantine row saying
why not) and acknowledged after the commit; or, while the database is unavailable, retried with
jittered back-off and never acknowledged. Nothing is dropped: a message that is not acknowledged
is delivered again by the broker (persistent session).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from homewatch import wire
from ingest_server import db, store
from ingest_server.errors import DatabaseError, DatabaseRejected, InvalidMessage
from ingest_server.mqtt import InboundMessage, MqttSubscriber
from ingest_server.settings import IngestSettings
from ingest_server.store import StoreResult
from ingest_server.validate import QuarantineReason, parse_message

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
    errors: int = 0  # failed attempts (database unavailable, hook failures, overflows)

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
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0

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
        """Nothing queued and nothing being processed (e.g. the demo drains on it)."""
        return self._subscriber.queue.empty() and self._busy == 0

    def counters_snapshot(self) -> dict[str, int]:
        return {**self.stats.as_dict(), "overflows": self._subscriber.overflows}

    # --- workers -------------------------------------------------------------------------------

    async def _work(self) -> None:
        queue = self._subscriber.queue
        while True:
            message = await queue.get()
            self._busy += 1
            try:
                await self._handle(message)
            except Exception:
                # Not expected (``_handle`` catches what it knows); never let a worker die. The
                # message stays unacknowledged and comes back when the session reconnects.
                self.stats.errors += 1
                log.exception("unexpected error handling mid %d on %s", message.mid, message.topic)
            finally:
                self._busy -= 1
                queue.task_done()

    async def _handle(self, message: InboundMessage) -> None:
        self.stats.received += 1
        attempt = 0
        while True:
            try:
                result = await self._process(message)
                break
            except DatabaseError as exc:
                self.stats.errors += 1
                delay = self._backoff(attempt)
                attempt += 1
                log.warning(
                    "database failed on mid %d from %s (attempt %d): %s; not acknowledged, "
                    "retrying in %.2f s",
                    message.mid,
                    message.topic,
                    attempt,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
        if self._subscriber.ack(message):
            self.stats.acked += 1
        self._count(result)
        if self._on_result is not None:
            try:
                await self._on_result(result)
            except Exception:
                self.stats.errors += 1
                log.exception("on_result hook failed for mid %d", message.mid)

    async def _process(self, message: InboundMessage) -> StoreResult:
        """Validate and store ``message``, committed on return; ``DatabaseError``: retry it."""
        try:
            readings = parse_message(message.topic, message.payload, self._settings.topic_root)
        except InvalidMessage as exc:
            return await self._quarantine(message, exc.reason, exc.detail)
        try:
            async with db.connection(self._pool) as conn:
                result = await store.store_message(conn, readings, message.topic)
        except DatabaseRejected as exc:
            return await self._quarantine(message, QuarantineReason.REJECTED, str(exc))
        except DatabaseError:
            raise
        except Exception as exc:
            # A defect of ours (or of the rules) on this message: keep it, keep going.
            log.exception("processing mid %d from %s failed", message.mid, message.topic)
            return await self._quarantine(
                message, QuarantineReason.PROCESSING_FAILED, f"{type(exc).__name__}: {exc}"
            )
        log.debug("mid %d from %s: %s", message.mid, message.topic, result)
        return result

    async def _quarantine(self, message: InboundMessage, reason: str, detail: str) -> StoreResult:
        log.warning(
            "quarantining mid %d from %s: %s: %s (payload %d bytes, starts %s)",
            message.mid,
            message.topic,
            reason,
            detail,
            len(message.payload),
            message.payload[:_HEX_PREVIEW].hex(),
        )
        async with db.connection(self._pool) as conn, db.transaction(conn):
            await store.quarantine(
                conn, topic=message.topic, payload=message.payload, reason=reason, detail=detail
            )
        gateway_id = wire.gateway_id_from_topic(message.topic, self._settings.topic_root)
        return StoreResult(
            topic=message.topic,
            gateway_id=gateway_id,
            quarantined=1,
            quarantine_reason=str(reason),
            quarantine_detail=detail,
        )

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
