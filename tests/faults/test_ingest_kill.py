"""``homewatch ingest run`` killed with SIGKILL between receiving messages and committing them,
on the project's Mosquitto configuration: nothing is lost, nothing is stored twice.

The ingest server acknowledges a message only after the commit that covers it, on a persistent
session: what it had received but not committed when it died is delivered again to the next
process with the same client id, and the id registry turns the redelivery into duplicates.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from homewatch import wire
from homewatch.embedded.broker import BrokerEndpoint, Mosquitto
from ingest_server import db
from tests.integration.ingest.ingest_support import (
    bp_reading,
    message,
    minutes_ago,
    query,
    unique,
    wait_until,
)
from tests.integration.ingest.scale_support import bound_devices, publish_many_async

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]


def _homewatch() -> list[str]:
    """The ``homewatch`` command of this environment."""
    script = Path(sys.executable).with_name("homewatch")
    if script.exists():
        return [str(script)]
    found = shutil.which("homewatch")
    return [found] if found else [sys.executable, "-m", "homewatch"]


class IngestProcess:
    """``homewatch ingest run`` as an operator starts it, configured by the environment."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def _spawn(self) -> None:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*_homewatch(), "ingest", "run"], cwd=ROOT, env=self.env, stdout=log, stderr=log
            )

    async def start(self, timeout: float = 30.0) -> None:
        self._spawn()
        await wait_until(
            lambda: "subscribed to" in self.new_log() or self.proc.poll() is not None,  # type: ignore[union-attr]
            seconds=timeout,
            what="the ingest process subscribed",
        )
        assert self.proc.poll() is None, f"ingest run exited: {self.new_log()}"

    def new_log(self) -> str:
        with self.log_path.open("rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def broker() -> Iterator[BrokerEndpoint]:
    mosquitto = Mosquitto()  # deploy/mosquitto/mosquitto.conf, on a port of the test's own
    try:
        yield mosquitto.start()
    finally:
        mosquitto.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[db.Pool]:
    pool = db.create_pool(database_url, min_size=1, max_size=2)
    await db.open_pool(pool, timeout=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def ingest(
    broker: BrokerEndpoint, database_url: str, tmp_path: Path
) -> Iterator[tuple[IngestProcess, str]]:
    root = f"hwfault/{unique('k')}"
    process = IngestProcess(
        {
            "HOMEWATCH_DATABASE_URL": database_url,
            "HOMEWATCH_MQTT_URL": broker.url,
            "HOMEWATCH_TOPIC_ROOT": root,
            "HOMEWATCH_CLIENT_ID": unique("fault-ingest"),  # the same for every restart
            "HOMEWATCH_API_PORT": "0",
            "HOMEWATCH_SESSION_EXPIRY_S": "300",
            "HOMEWATCH_DB_RETRY_MIN_S": "0.05",
            "HOMEWATCH_DB_RETRY_MAX_S": "0.5",
            # Small batches, so that a backlog takes a while to drain and a kill lands inside.
            "HOMEWATCH_BATCH_MAX_MESSAGES": "20",
            "HOMEWATCH_WORKERS": "2",
        },
        tmp_path / "ingest.log",
    )
    try:
        yield process, root
    finally:
        process.stop()


def _counts(database_url: str, device_keys: list[str]) -> tuple[int, int]:
    [(rows, distinct)] = query(
        database_url,
        "SELECT count(*), count(DISTINCT reading_id) FROM bp_readings WHERE device_key = ANY(%s)",
        (device_keys,),
    )
    return rows, distinct


def _backlog(root: str, cuffs: list, n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        gateway = f"gw-k{i % 7}"
        reading = bp_reading(cuffs[i % len(cuffs)], minutes_ago(n - i), 118 + i % 50, 78)
        out.append((wire.readings_topic(gateway, root), message(gateway, reading).to_bytes()))
    return out


async def test_kill_between_receive_and_commit_loses_nothing(
    ingest: tuple[IngestProcess, str],
    broker: BrokerEndpoint,
    pool: db.Pool,
    database_url: str,
) -> None:
    process, root = ingest
    cuffs = [c for _, c in await bound_devices(pool, 5)]
    keys = [c.device_key for c in cuffs]
    await process.start()
    assert process.proc is not None
    with psycopg.connect(database_url) as blocker:
        # The registry locked against inserts: the ingest process receives, reads, copies into
        # its staging table, and then waits inside its transaction, before any commit.
        blocker.execute("LOCK TABLE reading_ids IN EXCLUSIVE MODE")
        messages = _backlog(root, cuffs, 300)
        await publish_many_async(broker.host, broker.port, messages)
        await wait_until(
            lambda: (
                query(
                    database_url,
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE %s",
                    ("%reading_ids%",),
                )[0][0]
                >= 1
            ),
            seconds=20,
            what="the ingest process waiting inside its transaction",
        )
        process.kill()
        blocker.rollback()
    assert _counts(database_url, keys) == (0, 0)  # its transaction died with it

    await process.start()  # same client id: the broker delivers again what was not acknowledged
    await wait_until(
        lambda: _counts(database_url, keys)[0] >= len(messages), seconds=60, what="all stored"
    )
    await asyncio.sleep(1.0)  # and no more than that comes
    assert _counts(database_url, keys) == (len(messages), len(messages))


async def test_kill_while_a_backlog_drains_loses_nothing_and_stores_nothing_twice(
    ingest: tuple[IngestProcess, str],
    broker: BrokerEndpoint,
    pool: db.Pool,
    database_url: str,
) -> None:
    process, root = ingest
    cuffs = [c for _, c in await bound_devices(pool, 8)]
    keys = [c.device_key for c in cuffs]
    await process.start()  # makes the persistent session, then goes away
    process.kill()
    messages = _backlog(root, cuffs, 4000)
    await publish_many_async(broker.host, broker.port, messages)  # queued for the session

    stored_at_kill = []
    for fraction in (0.15, 0.5):
        await process.start()
        await wait_until(
            lambda f=fraction: _counts(database_url, keys)[0] >= f * len(messages),
            seconds=60,
            what=f"{fraction:.0%} of the backlog stored",
        )
        process.kill()  # mid-drain: batches received, some in their transaction
        stored_at_kill.append(_counts(database_url, keys)[0])
    assert stored_at_kill[-1] < len(messages)  # the kills did land while the backlog drained

    await process.start()
    started = time.monotonic()
    await wait_until(
        lambda: _counts(database_url, keys)[0] >= len(messages), seconds=90, what="all stored"
    )
    await asyncio.sleep(1.0)
    assert _counts(database_url, keys) == (len(messages), len(messages))
    assert time.monotonic() - started < 90
    process.stop()
    assert "Traceback" not in process.new_log()
