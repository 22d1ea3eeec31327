"""Operating the quarantine: list by reason and time, re-ingest after a fix (a device bound),
from Python and from the command line."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import typer
from typer.testing import CliRunner

from homewatch import wire
from homewatch.cli_ingest import quarantine_app, storage_app
from ingest_server import db, quarantine, store
from tests.integration.ingest.ingest_support import (
    bp_reading,
    device,
    message,
    minutes_ago,
    query,
    unique,
)

ROOT = "hwq"
TOPIC = f"{ROOT}/gateways/gw-q/readings"


async def _quarantined_orphans(pool: db.Pool, n: int) -> tuple[wire.DeviceIdentity, list[int], int]:
    """A stray cuff's ``n`` readings (two crises among them) set aside as unbound, and a garbage
    message: the cuff, the quarantine rows of its readings (in order), the garbage's row."""
    stray = device(unique("SN-stray"))
    readings = [
        bp_reading(stray, minutes_ago(60 - 6 * i), 190 if i < 2 else 125, 95) for i in range(n)
    ]
    garbage = f"not json {unique('g')}".encode()
    async with db.connection(pool) as conn:
        result = await store.store_message(conn, message("gw-q", *readings), TOPIC)
        await store.quarantine(conn, topic=TOPIC, payload=garbage, reason="malformed payload")
    assert result.quarantined == n
    by_reading = dict(
        query(
            pool.conninfo,
            "SELECT reading_id, id FROM quarantine WHERE reading_id = ANY(%s)",
            ([r.reading_id for r in readings],),
        )
    )
    [(garbage_row,)] = query(
        pool.conninfo, "SELECT id FROM quarantine WHERE payload = %s", (garbage,)
    )
    return stray, [by_reading[r.reading_id] for r in readings], garbage_row


async def test_list_by_reason_and_time(pool: db.Pool) -> None:
    before = datetime.now(UTC) - timedelta(minutes=1)
    _, rows, garbage = await _quarantined_orphans(pool, 3)
    async with db.connection(pool) as conn:
        unbound = await quarantine.list_quarantined(
            conn, reason="unbound device", since=before, ids=rows
        )
        malformed = await quarantine.list_quarantined(
            conn, reason="malformed payload", ids=[garbage, *rows]
        )
        none_then = await quarantine.list_quarantined(conn, until=before)
        counts = {c.reason: c.open for c in await quarantine.open_counts(conn)}
    assert [q.id for q in unbound] == rows  # oldest first
    assert all(q.resolved_at is None and q.payload_bytes > 0 for q in unbound)
    assert [(q.id, q.reading_id) for q in malformed] == [(garbage, None)]
    assert none_then == []
    assert counts["unbound device"] >= 3 and counts["malformed payload"] >= 1


async def test_reingest_after_binding_stores_and_evaluates_and_resolves(
    pool: db.Pool, database_url: str
) -> None:
    stray, ids, _ = await _quarantined_orphans(pool, 4)
    async with db.connection(pool) as conn:
        # Before the fix: nothing can be stored, every row stays open, with the outcome.
        early = await quarantine.reingest(conn, topic_root=ROOT, ids=ids)
        assert [o.resolved for o in early] == [False] * 4
        # The fix: the cuff is bound to its patient, from before the readings were taken.
        patient_id = unique("patient")
        await store.create_patient(conn, patient_id, "Found Owner")
        await store.bind_device(conn, stray.device_key, patient_id, minutes_ago(24 * 60))
        outcomes = await quarantine.reingest(
            conn, topic_root=ROOT, reason="unbound device", ids=ids
        )
        again = await quarantine.reingest(conn, topic_root=ROOT, ids=ids)
        rows = await quarantine.list_quarantined(conn, ids=ids, include_resolved=True)
    assert [(o.resolved, o.stored) for o in outcomes] == [(True, 1)] * 4
    assert sum(o.alerts for o in outcomes) >= 1  # the crisis is evaluated like live traffic
    assert again == []  # resolved rows are not taken again
    assert [(r.attempts, r.resolution) for r in rows] == [(2, "stored 1")] * 4
    assert all(r.resolved_at is not None for r in rows)
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(4,)]
    assert query(
        database_url, "SELECT severity FROM alerts WHERE patient_id = %s", (patient_id,)
    ) == [("urgent",)]


async def test_reingest_of_what_is_still_invalid_leaves_it_open(pool: db.Pool) -> None:
    _, _, garbage = await _quarantined_orphans(pool, 1)
    async with db.connection(pool) as conn:
        [outcome] = await quarantine.reingest(conn, topic_root=ROOT, ids=[garbage])
        [row] = await quarantine.list_quarantined(conn, ids=[outcome.id])
    assert not outcome.resolved
    assert outcome.outcome.startswith("still invalid: malformed payload")
    assert (row.attempts, row.last_outcome, row.resolved_at) == (1, outcome.outcome, None)


def test_the_command_line(database_url: str) -> None:
    async def with_pool(work):  # type: ignore[no-untyped-def]
        pool = db.create_pool(database_url, min_size=1, max_size=1)
        await db.open_pool(pool, timeout=10)
        try:
            return await work(pool)
        finally:
            await pool.close()

    async def bind(pool: db.Pool) -> None:
        async with db.connection(pool) as conn:
            patient_id = unique("patient")
            await store.create_patient(conn, patient_id, "CLI Owner")
            await store.bind_device(conn, stray.device_key, patient_id, minutes_ago(24 * 60))

    stray, ids, _ = asyncio.run(with_pool(lambda pool: _quarantined_orphans(pool, 2)))
    cli = typer.Typer()
    cli.add_typer(quarantine_app, name="quarantine")
    cli.add_typer(storage_app, name="storage")
    run = CliRunner().invoke
    db_url = ["--database-url", database_url]
    only = [arg for i in ids for arg in ("--id", str(i))]

    listed = run(
        cli, ["quarantine", "list", "--reason", "unbound device", *only, *db_url, "--json"]
    )
    assert listed.exit_code == 0, listed.output
    assert [r["id"] for r in json.loads(listed.output)["rows"]] == ids
    table = run(cli, ["quarantine", "list", *only, *db_url])
    assert "unbound device" in table.output and "open: " in table.output

    reingest = ["quarantine", "reingest", *only, "--topic-root", ROOT, *db_url]
    stuck = run(cli, reingest)
    assert stuck.exit_code == 3, stuck.output  # still open: the device is bound to nobody
    asyncio.run(with_pool(bind))
    done = run(cli, reingest)
    assert done.exit_code == 0, done.output
    assert "2 rows re-ingested: 2 resolved" in done.output

    info = run(cli, ["storage", "info", *db_url, "--json"])
    assert info.exit_code == 0, info.output
    assert json.loads(info.output)["settings"]["flavor"] in ("native", "timescaledb")
    maintained = run(cli, ["storage", "maintain", *db_url])
    assert maintained.exit_code == 0, maintained.output

    bad_time = run(cli, ["quarantine", "list", "--since", "yesterday", *db_url])
    assert bad_time.exit_code == 2 and "ISO 8601" in bad_time.output
    unreachable = run(
        cli, ["quarantine", "list", "--database-url", "postgresql://postgres@127.0.0.1:1/none"]
    )
    assert unreachable.exit_code == 1
