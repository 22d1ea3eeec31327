"""The durable outbox: every reading is on disk before it is published, and leaves only on PUBACK.

SQLite in WAL mode with ``synchronous=FULL``: a committed ``put`` survives power loss. All SQLite
work runs on one worker thread (one connection, no cross-thread use), off the event loop.

A reading id is queued once, ever: ``handed_over`` remembers every id the outbox has taken (for
``SEEN_RETENTION``), so a record a device hands over again — a cuff re-sending its memory, a meter
re-read after a reset — is not sent twice, even after the first copy was delivered and even if
the device clock's correction changed in between (which would change its ``measured_at``).

For glucose meters the outbox also keeps each meter's high-water mark (the last sequence number
retrieved) and advances it in the same transaction as the readings it covers: after a crash the
mark never claims a record the outbox does not hold.

Bounded (``max_readings``), and nothing is ever dropped to stay within the bound. While the
outbox holds ``max_readings`` or more, the policy is:

* the oldest unsent readings stay (they are the ones the clinicians are waiting for);
* ``put_many`` refuses a batch of new readings with ``OutboxFull`` and stores nothing — not even
  a meter's high-water mark — so a device that can give the records again (a glucose meter read
  over RACP) keeps them in its own memory and is read again once the outbox has drained;
* a batch the device cannot give again (``beyond_limit=True``: a cuff's indication is confirmed
  by the Bluetooth stack before it reaches us) is stored all the same and counted in
  ``stored_beyond_limit``: the bound yields before a reading is lost.

A batch that arrives while the outbox is below its bound is stored whole, even when it takes the
outbox past it: splitting it would split the meter's high-water mark, and a batch larger than
the bound would otherwise never fit. The bound is therefore exceeded by at most one batch (a
meter's memory) besides the readings stored ``beyond_limit``.

Callers report the condition loudly (``gateway.service``: an error log, the status flag
``outbox.full``, the metric ``homewatch_gateway_outbox_full``).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from homewatch.wire import READING, Reading

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    reading_id  TEXT NOT NULL UNIQUE,
    reading     TEXT NOT NULL,
    enqueued_at TEXT NOT NULL
);
-- Payloads the gateway could not decode: kept with the reason, for the audit and for a later fix.
CREATE TABLE IF NOT EXISTS rejected (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    device_key     TEXT NOT NULL,
    characteristic TEXT NOT NULL,
    payload_hex    TEXT NOT NULL,
    reason         TEXT NOT NULL,
    received_at    TEXT NOT NULL
);
-- A value a device sends again (a meter re-read) is kept once.
CREATE UNIQUE INDEX IF NOT EXISTS rejected_once
    ON rejected (device_key, characteristic, payload_hex);
-- Every reading id ever queued (see the module docstring); pruned after SEEN_RETENTION.
CREATE TABLE IF NOT EXISTS handed_over (
    reading_id TEXT PRIMARY KEY,
    at         TEXT NOT NULL
) WITHOUT ROWID;
-- Per glucose meter: the last record retrieved, with the meter's time stamp of that record
-- (sequence numbers wrap and restart, so the number alone does not identify a record).
CREATE TABLE IF NOT EXISTS high_water (
    device_key      TEXT PRIMARY KEY,
    sequence_number INTEGER NOT NULL,
    device_time     TEXT,
    updated_at      TEXT NOT NULL
) WITHOUT ROWID;
"""
#: How long a delivered reading's id is remembered: longer than any device keeps its memory.
SEEN_RETENTION = timedelta(days=400)


class OutboxError(Exception):
    """Root of the outbox's own errors (SQLite errors pass through as ``sqlite3.Error``)."""


class OutboxFull(OutboxError):
    """The outbox is at its bound; none of the batch was stored."""

    def __init__(self, limit: int, depth: int, refused: int) -> None:
        super().__init__(
            f"outbox full: {depth} reading(s) queued, limit {limit}; {refused} new reading(s) "
            "refused (they stay on the device)"
        )
        self.limit = limit
        self.depth = depth
        self.refused = refused


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """What ``homewatch gateway status`` and the status message show of an outbox."""

    depth: int
    limit: int | None
    oldest_enqueued_at: datetime | None
    rejected: int

    @property
    def queued(self) -> int:
        """Readings waiting (kept by the worker thread; exact, as this process is the only
        writer). ``depth()`` asks SQLite."""
        return self._depth

    @property
    def full(self) -> bool:
        return self.limit is not None and self.depth >= self.limit


@dataclass(frozen=True, slots=True)
class QueuedReading:
    seq: int
    reading: Reading


@dataclass(frozen=True, slots=True)
class HighWaterMark:
    """The last record retrieved from a meter."""

    sequence_number: int
    device_time: datetime | None


class Outbox:
    def __init__(self, path: Path | str, *, max_readings: int | None = None) -> None:
        if max_readings is not None and max_readings < 1:
            raise ValueError(f"max_readings must be positive or None, got {max_readings}")
        self._path = str(path)
        self.max_readings = max_readings
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._db: sqlite3.Connection | None = None
        self._nonempty = asyncio.Event()
        #: Rows in ``outbox``, kept by the worker thread (one process owns the file).
        self._depth = 0
        #: Readings stored past ``max_readings`` since the outbox was opened.
        self.stored_beyond_limit = 0

    async def __aenter__(self) -> Outbox:
        await self._run(self._open)
        if await self.depth():
            self._nonempty.set()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._run(self._close)
        self._executor.shutdown(wait=True)

    async def put(self, reading: Reading) -> bool:
        """Store ``reading`` durably; False when it was handed over before (same reading id)."""
        return bool(await self.put_many([reading]))

    async def put_many(
        self,
        readings: list[Reading],
        *,
        device_key: str | None = None,
        mark: HighWaterMark | None = None,
        beyond_limit: bool = False,
    ) -> list[Reading]:
        """Store ``readings`` durably in one transaction, with the meter's new high-water mark
        when given; those that were new.

        Raises ``OutboxFull`` (storing nothing) when the outbox is at ``max_readings`` and the
        batch holds new readings, unless ``beyond_limit``: readings the device cannot give again
        are never refused.
        """
        added = await self._run(self._insert, readings, device_key, mark, beyond_limit)
        if added:
            self._nonempty.set()
        return added

    @property
    def queued(self) -> int:
        """Readings waiting (kept by the worker thread; exact, as this process is the only
        writer). ``depth()`` asks SQLite."""
        return self._depth

    @property
    def full(self) -> bool:
        """At or past the bound (the cached depth: exact, this process is the only writer)."""
        return self.max_readings is not None and self._depth >= self.max_readings

    async def high_water_mark(self, device_key: str) -> HighWaterMark | None:
        row = await self._run(
            lambda: (
                self._conn()
                .execute(
                    "SELECT sequence_number, device_time FROM high_water WHERE device_key = ?",
                    (device_key,),
                )
                .fetchone()
            )
        )
        if row is None:
            return None
        return HighWaterMark(row[0], None if row[1] is None else datetime.fromisoformat(row[1]))

    async def reject(
        self,
        device_key: str,
        characteristic: str,
        payload: bytes,
        reason: str,
        received_at: datetime,
    ) -> None:
        """Keep a payload that could not be decoded (it is never published)."""
        await self._run(
            self._insert_rejected,
            device_key,
            characteristic,
            payload.hex(),
            reason,
            received_at.isoformat(),
        )

    async def rejected_count(self) -> int:
        return await self._run(
            lambda: self._conn().execute("SELECT count(*) FROM rejected").fetchone()[0]
        )

    async def oldest(self, limit: int) -> list[QueuedReading]:
        rows = await self._run(self._select, limit)
        return [QueuedReading(seq, READING.validate_json(text)) for seq, text in rows]

    async def remove(self, seqs: list[int]) -> None:
        """Forget readings the broker has acknowledged."""
        await self._run(self._delete, seqs)

    async def depth(self) -> int:
        return await self._run(self._count)

    async def stats(self) -> OutboxStats:
        return await self._run(self._stats)

    @staticmethod
    def inspect(path: Path | str) -> OutboxStats:
        """Read-only look at an outbox another process may be using (``gateway status``).

        WAL readers never block the writer; raises ``FileNotFoundError`` when there is none.
        """
        if not Path(path).exists():
            raise FileNotFoundError(f"no outbox at {path}")
        db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            return _stats(db, None)
        finally:
            db.close()

    async def wait_nonempty(self) -> None:
        await self._nonempty.wait()
        if not await self.depth():
            self._nonempty.clear()
            await self._nonempty.wait()

    # --- worker thread ------------------------------------------------------------------

    async def _run(self, func, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    def _open(self) -> None:
        Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # fsync on every commit: a put survives power loss
        db.executescript(_SCHEMA)
        # An outbox written before handed_over existed: its queued ids count as handed over.
        db.execute("INSERT OR IGNORE INTO handed_over SELECT reading_id, enqueued_at FROM outbox")
        cutoff = (datetime.now(UTC) - SEEN_RETENTION).isoformat()
        db.execute("DELETE FROM handed_over WHERE at < ?", (cutoff,))
        self._db = db
        self._depth = self._count()

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("outbox is not open")
        return self._db

    def _insert(
        self,
        readings: list[Reading],
        device_key: str | None,
        mark: HighWaterMark | None,
        beyond_limit: bool,
    ) -> list[Reading]:
        db = self._conn()
        now = datetime.now(UTC).isoformat()
        added: list[Reading] = []
        with db:  # commits, or rolls back on any exception (OutboxFull included)
            db.execute("BEGIN")
            for reading in readings:
                reading_id = str(reading.reading_id)
                new = db.execute(
                    "INSERT OR IGNORE INTO handed_over (reading_id, at) VALUES (?, ?)",
                    (reading_id, now),
                ).rowcount
                if new:
                    db.execute(
                        "INSERT INTO outbox (reading_id, reading, enqueued_at) VALUES (?, ?, ?)",
                        (reading_id, reading.model_dump_json(), now),
                    )
                    added.append(reading)
            if mark is not None:
                if device_key is None:
                    raise ValueError("a high-water mark needs its device_key")
                when = None if mark.device_time is None else mark.device_time.isoformat()
                db.execute(
                    "INSERT INTO high_water (device_key, sequence_number, device_time, updated_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (device_key) DO UPDATE SET"
                    " sequence_number = excluded.sequence_number,"
                    " device_time = excluded.device_time, updated_at = excluded.updated_at",
                    (device_key, mark.sequence_number, when, now),
                )
            limit = self.max_readings
            if added and limit is not None and self._depth + len(added) > limit:
                if self._depth < limit:
                    log.warning(
                        "a batch of %d reading(s) takes the outbox past its limit of %d "
                        "(a batch is stored whole)",
                        len(added),
                        limit,
                    )
                elif not beyond_limit:
                    raise OutboxFull(limit, self._depth, len(added))
                else:
                    self.stored_beyond_limit += len(added)
                    log.error(
                        "outbox full (limit %d): %d reading(s) stored beyond it, because their "
                        "device cannot send them again",
                        limit,
                        len(added),
                    )
        self._depth += len(added)
        return added

    def _insert_rejected(self, *row: str) -> None:
        self._conn().execute(
            "INSERT OR IGNORE INTO rejected"
            " (device_key, characteristic, payload_hex, reason, received_at)"
            " VALUES (?, ?, ?, ?, ?)",
            row,
        )

    def _select(self, limit: int) -> list[tuple[int, str]]:
        return (
            self._conn()
            .execute("SELECT seq, reading FROM outbox ORDER BY seq LIMIT ?", (limit,))
            .fetchall()
        )

    def _delete(self, seqs: list[int]) -> None:
        db = self._conn()
        with db:
            db.execute("BEGIN")
            removed = db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
        self._depth -= removed.rowcount

    def _count(self) -> int:
        return self._conn().execute("SELECT count(*) FROM outbox").fetchone()[0]

    def _stats(self) -> OutboxStats:
        return _stats(self._conn(), self.max_readings, self._depth)


def _stats(db: sqlite3.Connection, limit: int | None, depth: int | None = None) -> OutboxStats:
    """The figures of an outbox; ``depth`` when the caller keeps it (a count scans the table)."""
    if depth is None:
        depth = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    row = db.execute("SELECT enqueued_at FROM outbox ORDER BY seq LIMIT 1").fetchone()
    oldest = None if row is None else row[0]
    rejected = db.execute("SELECT count(*) FROM rejected").fetchone()[0]
    return OutboxStats(
        depth=depth,
        limit=limit,
        oldest_enqueued_at=None if oldest is None else datetime.fromisoformat(oldest),
        rejected=rejected,
    )
