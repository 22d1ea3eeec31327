"""The TimescaleDB path of migration 0003, where the server has the extension (the timescale/
timescaledb image; not this machine's PostgreSQL, whose registries do not carry it): hypertables,
compression segmented by patient with its policy, retention, continuous aggregates with the same
columns and the same numbers as the native path."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from ingest_server import db, partitions, store
from ingest_server.migrate import migrate
from tests.fixtures.postgres import database_url_for
from tests.integration.ingest.ingest_support import (
    bp_reading,
    device,
    glucose_reading,
    message,
    meter,
    query,
    unique,
)
from tests.integration.ingest.summary_check import (
    assert_same,
    expected_bp_daily,
    expected_glucose_daily,
    stored_daily,
)

TOPIC = "t/gateways/gw-ts/readings"


def _timescale_unavailable(server: str) -> str | None:
    """Why the TimescaleDB path cannot be tested on ``server``, or None when it can."""
    with psycopg.connect(server, autocommit=True) as conn:
        if not conn.execute(
            "SELECT FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchall():
            return (
                "the timescaledb extension is not installed on the test server (PostgreSQL"
                " without it: the native-partitioning path is the one tested here); run the"
                " tests against the timescale/timescaledb image to cover this path"
            )
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()
        if preload is None or "timescaledb" not in preload[0]:
            return "timescaledb is installed but not in shared_preload_libraries on the test server"
    return None


@pytest.fixture(scope="module")
def timescale_database(postgres_server: str) -> Iterator[str]:
    reason = _timescale_unavailable(postgres_server)
    if reason:
        pytest.skip(reason)
    name = f"hwtest_ts_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET homewatch.timescaledb = 'on'").format(
                sql.Identifier(name)
            )
        )
    url = database_url_for(name, postgres_server)
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
async def ts_pool(timescale_database: str) -> AsyncIterator[db.Pool]:
    pool = db.create_pool(timescale_database, min_size=1, max_size=2)
    await db.open_pool(pool, timeout=10)
    try:
        yield pool
    finally:
        await pool.close()


def test_readings_are_hypertables_compressed_by_patient_with_policies(
    timescale_database: str,
) -> None:
    url = timescale_database
    assert query(url, "SELECT flavor FROM storage_settings") == [("timescaledb",)]
    assert query(
        url,
        "SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1",
    ) == [("bp_readings",), ("glucose_readings",)]
    assert query(
        url,
        "SELECT hypertable_name, column_name FROM timescaledb_information.dimensions"
        " WHERE hypertable_name IN ('bp_readings', 'glucose_readings') ORDER BY 1",
    ) == [("bp_readings", "measured_at"), ("glucose_readings", "measured_at")]
    # compression_settings until 2.17; hypertable_compression_settings (segmentby as text) after.
    if query(url, "SELECT to_regclass('timescaledb_information.compression_settings')") != [
        (None,)
    ]:
        segmentby = query(
            url,
            "SELECT hypertable_name::text, attname::text"
            " FROM timescaledb_information.compression_settings"
            " WHERE segmentby_column_index IS NOT NULL ORDER BY 1",
        )
    else:
        segmentby = query(
            url,
            "SELECT hypertable::text, segmentby"
            " FROM timescaledb_information.hypertable_compression_settings ORDER BY 1",
        )
    assert segmentby == [("bp_readings", "patient_id"), ("glucose_readings", "patient_id")]
    jobs = query(
        url,
        "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs"
        " WHERE proc_name IN ('policy_compression', 'policy_retention',"
        " 'policy_refresh_continuous_aggregate') ORDER BY 1, 2",
    )
    assert [j[0] for j in jobs].count("policy_compression") == 2
    assert [j[0] for j in jobs].count("policy_retention") == 2
    assert [j[0] for j in jobs].count("policy_refresh_continuous_aggregate") == 2
    assert query(
        url,
        "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates"
        " ORDER BY 1",
    ) == [("bp_daily", False), ("glucose_daily", False)]
    # The unique key holds the time column, as hypertables require; no foreign keys.
    assert query(
        url,
        "SELECT conname FROM pg_constraint WHERE conrelid = 'bp_readings'::regclass"
        " AND contype IN ('p', 'f') ORDER BY 1",
    ) == [("bp_readings_pkey",)]


async def test_same_ingest_path_same_summaries(ts_pool: db.Pool, timescale_database: str) -> None:
    url = timescale_database
    cuff, gl = device(unique("SN")), meter(unique("SN"))
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    patient_id = unique("patient")
    async with db.connection(ts_pool) as conn:
        await store.create_patient(conn, patient_id, "Timescale Test")
        for d in (cuff, gl):
            await store.bind_device(conn, d.device_key, patient_id, day - timedelta(days=30))
        readings = [
            bp_reading(cuff, day + timedelta(hours=7), 132, 85),
            bp_reading(cuff, day + timedelta(hours=20), 141, 90),
            bp_reading(cuff, day + timedelta(days=1, hours=8), 320, 90),
            glucose_reading(
                gl, day + timedelta(hours=8), 1, mantissa=55, exponent=-4, unit="mol/L"
            ),
            glucose_reading(
                gl, day + timedelta(hours=9), 2, mantissa=28, exponent=-4, unit="mol/L"
            ),
        ]
        first = await store.store_message(conn, message("gw-ts", *readings), TOPIC)
        again = await store.store_message(conn, message("gw-ts", *readings), TOPIC)
        far = bp_reading(cuff, datetime.now(UTC) + timedelta(days=3 * 365), 120, 80)
        future = await store.store_message(conn, message("gw-ts", far), TOPIC)
        # The maintenance is safe to run on this path too (chunks need none).
        await partitions.maintain(conn)
    assert (first.stored, again.duplicates, future.stored) == (5, 5, 1)
    assert_same(
        stored_daily(url, "bp_daily", patient_id), expected_bp_daily(url, patient_id, "UTC")
    )
    assert_same(
        stored_daily(url, "glucose_daily", patient_id),
        expected_glucose_daily(url, patient_id, "UTC"),
    )
