"""The durable outbox: every reading is on disk before it is published, and leaves only on PUBACK.

SQLite in WAL mode with ``synchronous=FULL``: a committed ``put`` survives power loss. The reading
id is unique, so a record the device hands over twice is queued once. All SQLite work runs on
one worker thread (one connection, no cross-thread use), off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from homewatch.wire import BloodPressureReading

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
"""


@dataclass(frozen=True, slots=True)
class QueuedReading:
    seq: int
    reading: BloodPressureReading


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

    async def put(self, reading: BloodPressureReading) -> bool:
        """Store ``reading`` durably; False when it was already queued (same reading id)."""
        added = await self._run(self._insert, reading)
        self._nonempty.set()
        return added

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
        return [
            QueuedReading(seq, BloodPressureReading.model_validate_json(text)) for seq, text in rows
        ]

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
        self._db = db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("outbox is not open")
        return self._db

    def _insert(self, reading: BloodPressureReading) -> bool:
        cur = self._conn().execute(
            "INSERT OR IGNORE INTO outbox (reading_id, reading, enqueued_at) VALUES (?, ?, ?)",
            (str(reading.reading_id), reading.model_dump_json(), datetime.now(UTC).isoformat()),
        )
        return cur.rowcount == 1

    def _insert_rejected(self, *row: str) -> None:
        self._conn().execute(
            "INSERT INTO rejected (device_key, characteristic, payload_hex, reason, received_at)"
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
