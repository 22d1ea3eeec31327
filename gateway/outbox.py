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
    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._db: sqlite3.Connection | None = None
        self._nonempty = asyncio.Event()

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
    ) -> list[Reading]:
        """Store ``readings`` durably in one transaction, with the meter's new high-water mark
        when given; those that were new."""
        added = await self._run(self._insert, readings, device_key, mark)
        if added:
            self._nonempty.set()
        return added

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

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("outbox is not open")
        return self._db

    def _insert(
        self, readings: list[Reading], device_key: str | None, mark: HighWaterMark | None
    ) -> list[Reading]:
        db = self._conn()
        now = datetime.now(UTC).isoformat()
        added = []
        with db:
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
            db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def _count(self) -> int:
        return self._conn().execute("SELECT count(*) FROM outbox").fetchone()[0]
