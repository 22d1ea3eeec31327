"""Native partitioning (the machine's PostgreSQL, no extension): partitions made ahead by the
maintenance, a DEFAULT partition so that no reading is ever refused, retention."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from homewatch import wire
from ingest_server import db, partitions, store
from ingest_server.errors import DatabaseRejected, DatabaseUnavailable
from ingest_server.service import IngestService
from ingest_server.settings import IngestSettings
from tests.integration.ingest.ingest_support import (
    bp_reading,
    device,
    glucose_reading,
    message,
    meter,
    query,
    unique,
)

TOPIC = "t/gateways/gw-part/readings"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def native_only(database_url: str) -> None:
    [(flavor,)] = query(database_url, "SELECT flavor FROM storage_settings")
    if flavor != "native":
        pytest.skip(f"storage is {flavor}: the native-partitioning tests do not apply")


async def _bound(pool: db.Pool, *devices: wire.DeviceIdentity, since: datetime) -> str:
    patient_id = unique("patient")
    async with db.connection(pool) as conn:
        await store.create_patient(conn, patient_id, "Partition Test")
        for d in devices:
            await store.bind_device(conn, d.device_key, patient_id, since)
    return patient_id


def _partition_of(database_url: str, table: str, reading: wire.Reading) -> str:
    [(name,)] = query(
        database_url,
        f"SELECT tableoid::regclass::text FROM {table} WHERE reading_id = %s",
        (reading.reading_id,),
    )
    return name


def _bounds(database_url: str, table: str) -> list[tuple[datetime | None, datetime | None]]:
    return query(
        database_url,
        "SELECT lower_bound, upper_bound FROM homewatch_partition_bounds(%s::regclass)"
        " ORDER BY lower_bound NULLS FIRST",
        (table,),
    )


def test_readings_tables_are_range_partitioned_with_a_default(database_url: str) -> None:
    assert query(
        database_url,
        "SELECT c.relname, p.partstrat, a.attname FROM pg_partitioned_table p"
        " JOIN pg_class c ON c.oid = p.partrelid"
        " JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
        " ORDER BY 1",
    ) == [("bp_readings", "r", "measured_at"), ("glucose_readings", "r", "measured_at")]
    for table in ("bp_readings", "glucose_readings"):
        bounds = _bounds(database_url, table)
        assert bounds[0] == (None, None)  # the DEFAULT partition
        ranges = bounds[1:]
        assert all(hi - lo == timedelta(days=7) for lo, hi in ranges)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))  # no gaps
        assert ranges[0][0] <= NOW - timedelta(weeks=4)  # partitions_behind
        assert ranges[-1][1] >= NOW + timedelta(weeks=8)  # partitions_ahead


async def test_maintenance_makes_partitions_ahead_as_time_passes(
    pool: db.Pool, database_url: str
) -> None:
    later = NOW + timedelta(weeks=12)
    async with db.connection(pool) as conn:
        done = await partitions.maintain(conn, at=later)
        again = await partitions.maintain(conn, at=later)
        parts = await partitions.partitions(conn)
    created = {a.relation for a in done if a.action == "created"}
    assert {"bp_readings", "glucose_readings"} == {r.rsplit("_p", 1)[0] for r in created}
    assert not [a for a in again if a.action == "created"]  # idempotent
    newest = max(p.upper_bound for p in parts if p.parent == "bp_readings" and p.upper_bound)
    assert newest >= later + timedelta(weeks=8)


async def test_readings_far_in_the_past_or_future_land_and_move_into_their_partition(
    pool: db.Pool, database_url: str
) -> None:
    cuff, gl = device(unique("SN")), meter(unique("SN"))
    patient_id = await _bound(pool, cuff, gl, since=NOW - timedelta(days=3 * 365))
    past = bp_reading(cuff, NOW - timedelta(days=2 * 365), 130, 85)  # a clock years off, or a
    future = bp_reading(cuff, NOW + timedelta(days=3 * 365), 131, 86)  # backlog from long ago
    future_glucose = glucose_reading(
        gl, NOW + timedelta(days=3 * 365), 7, mantissa=55, exponent=-4, unit="mol/L"
    )
    async with db.connection(pool) as conn:
        result = await store.store_message(
            conn, message("gw-part", past, future, future_glucose), TOPIC
        )
    assert (result.stored, result.quarantined) == (3, 0)
    assert _partition_of(database_url, "bp_readings", past) == "bp_readings_default"
    assert _partition_of(database_url, "bp_readings", future) == "bp_readings_default"
    assert _partition_of(database_url, "glucose_readings", future_glucose) == (
        "glucose_readings_default"
    )

    # Time passes (or the maintenance runs for that time): their partitions are made, and take
    # the rows of their range out of the DEFAULT partition.
    async with db.connection(pool) as conn:
        moved = await partitions.maintain(conn, at=future.measured_at)
        await partitions.maintain(conn, at=past.measured_at)
    assert any(" 1 rows from bp_readings_default" in a.detail for a in moved)
    assert _partition_of(database_url, "bp_readings", future).startswith("bp_readings_p")
    assert _partition_of(database_url, "bp_readings", past).startswith("bp_readings_p")
    assert _partition_of(database_url, "glucose_readings", future_glucose).startswith(
        "glucose_readings_p"
    )
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(2,)]
    # And they are still the same readings: a redelivery is a duplicate.
    async with db.connection(pool) as conn:
        again = await store.store_message(conn, message("gw-part", past, future), TOPIC)
    assert (again.stored, again.duplicates) == (0, 2)


async def test_concurrent_maintenance_while_readings_are_written(
    pool: db.Pool, database_url: str
) -> None:
    cuff = device(unique("SN"))
    patient_id = await _bound(pool, cuff, since=NOW - timedelta(days=60))
    readings = [bp_reading(cuff, NOW + timedelta(days=200, minutes=m), 120, 80) for m in range(30)]
    retried: list[wire.BloodPressureReading] = []

    async def write(part: list[wire.BloodPressureReading]) -> None:
        for r in part:
            while True:  # as the consumer does: a transient failure is retried
                try:
                    async with db.connection(pool) as conn:
                        await store.store_message(conn, message("gw-part", r), TOPIC)
                    break
                except DatabaseUnavailable:
                    retried.append(r)

    async def maintain() -> None:
        for weeks in (28, 29, 30):
            async with db.connection(pool) as conn:
                await partitions.maintain(conn, at=NOW + timedelta(weeks=weeks))

    await asyncio.gather(write(readings[::2]), write(readings[1::2]), maintain(), maintain())
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(30,)]
    assert query(
        database_url,
        "SELECT count(DISTINCT tableoid) FROM bp_readings WHERE patient_id = %s",
        (patient_id,),
    ) == [(1,)]  # all in the partition made for them, none left behind in the DEFAULT one
    assert _partition_of(database_url, "bp_readings", readings[0]).startswith("bp_readings_p")


async def test_the_service_maintains_the_storage_when_it_starts(
    settings: IngestSettings, database_url: str
) -> None:
    [(ahead,)] = query(
        database_url,
        "SELECT partition::text FROM homewatch_partition_bounds('bp_readings')"
        " WHERE lower_bound <= now() + interval '7 weeks'"
        " AND now() + interval '7 weeks' < upper_bound",
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {ahead}")  # as if it had never been made
    async with asyncio.timeout(30), IngestService(settings):
        for _ in range(200):
            if query(database_url, "SELECT to_regclass(%s) IS NOT NULL", (ahead,)) == [(True,)]:
                break
            await asyncio.sleep(0.05)
    assert query(database_url, "SELECT to_regclass(%s) IS NOT NULL", (ahead,)) == [(True,)]


async def test_retention_drops_old_partitions_and_quarantines_what_arrives_too_old(
    pool: db.Pool, database_url: str
) -> None:
    cuff = device(unique("SN"))
    patient_id = await _bound(pool, cuff, since=NOW - timedelta(days=12 * 365))
    three_years = bp_reading(cuff, NOW - timedelta(days=3 * 365), 125, 82)
    recent = bp_reading(cuff, NOW - timedelta(days=1), 126, 83)
    async with db.connection(pool) as conn:
        await store.store_message(conn, message("gw-part", three_years, recent), TOPIC)
        await partitions.maintain(conn, at=three_years.measured_at)  # its own partition
    old_partition = _partition_of(database_url, "bp_readings", three_years)
    assert old_partition.startswith("bp_readings_p")

    try:
        query(database_url, "SELECT homewatch_set_retention('2 years')")
        async with db.connection(pool) as conn:
            done = await partitions.maintain(conn)
            # A reading already older than the retention: stored, it would be dropped at the next
            # maintenance, so it is quarantined (kept, with the reason) instead.
            too_old = bp_reading(cuff, NOW - timedelta(days=3 * 365 + 10), 127, 84)
            result = await store.store_message(conn, message("gw-part", too_old), TOPIC)
    finally:
        query(database_url, "SELECT homewatch_set_retention('10 years')")
    assert ("dropped", old_partition) in {(a.action, a.relation) for a in done}
    assert query(
        database_url,
        "SELECT reading_id FROM bp_readings WHERE patient_id = %s",
        (patient_id,),
    ) == [(recent.reading_id,)]
    assert (result.stored, result.quarantined, result.quarantine_reason) == (
        0,
        1,
        "outside retention",
    )
    # Its id is forgotten with it: the registry holds no id older than the retention.
    assert query(
        database_url,
        "SELECT count(*) FROM reading_ids WHERE reading_id = %s",
        (three_years.reading_id,),
    ) == [(0,)]


def test_a_row_refused_by_a_partition_attached_meanwhile_is_retried_not_quarantined(
    database_url: str,
) -> None:
    """What an insert meets when the maintenance attached its range's partition after the
    statement routed the row to the DEFAULT partition: retried (the consumer does), never
    quarantined as refused data; a CHECK constraint on the data itself is refused."""
    row = (
        "INSERT INTO {} (reading_id, patient_id, device_key, gateway_id, measured_at, received_at,"
        " reported_unit, raw) VALUES (gen_random_uuid(), 'p', 'd', 'g', now(), now(), {}, '')"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation) as routed:
            conn.execute(row.format("bp_readings_default", "'mmHg'"))
        with pytest.raises(psycopg.errors.CheckViolation) as refused:
            conn.execute(row.format("bp_readings", "'furlongs'"))
    assert isinstance(db.translate(routed.value), DatabaseUnavailable)
    assert isinstance(db.translate(refused.value), DatabaseRejected)
