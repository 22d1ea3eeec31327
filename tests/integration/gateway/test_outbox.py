"""The outbox on a real SQLite file: durable, ordered, duplicate-free."""

import sqlite3

from gateway.outbox import Outbox
from tests.integration.gateway.gateway_support import T0, make_reading


async def test_readings_survive_reopen_in_order_and_leave_only_when_removed(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    readings = [make_reading(i) for i in range(5)]
    async with Outbox(path) as outbox:
        for r in readings:
            assert await outbox.put(r) is True
        assert await outbox.put(readings[0]) is False  # same reading id: queued once
    async with Outbox(path) as outbox:  # a restart
        assert await outbox.depth() == 5
        first = await outbox.oldest(2)
        assert [q.reading for q in first] == readings[:2]
        await outbox.remove([q.seq for q in first])
        rest = await outbox.oldest(10)
        assert [q.reading for q in rest] == readings[2:]
    # WAL mode with full sync, checked on the file itself.
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_wait_nonempty_wakes_on_put(tmp_path):
    import asyncio

    async with Outbox(tmp_path / "o.sqlite3") as outbox:
        waiter = asyncio.create_task(outbox.wait_nonempty())
        await asyncio.sleep(0.05)
        assert not waiter.done()
        await outbox.put(make_reading(1))
        await asyncio.wait_for(waiter, 2)


async def test_rejected_payloads_are_kept(tmp_path):
    async with Outbox(tmp_path / "o.sqlite3") as outbox:
        await outbox.reject("Acme/BP-1/S1", "2A35", b"\x1e\x78", "truncated", T0)
        assert await outbox.rejected_count() == 1
        assert await outbox.depth() == 0
