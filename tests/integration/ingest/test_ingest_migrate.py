"""Schema migrations: versioned, idempotent, safe to run from two places at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg import sql

from ingest_server.migrate import CREATE_TABLE, RECORD, available_migrations, migrate
from tests.fixtures.postgres import database_url_for, run_migrations
from tests.integration.ingest.ingest_support import query


@pytest.fixture
def empty_database(postgres_server: str) -> Iterator[str]:
    name = f"hwtest_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url_for(name, postgres_server)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_migrations_are_packaged_in_order() -> None:
    versions = [m.version for m in available_migrations()]
    assert versions[:2] == ["0001_initial", "0002_glucose_and_device_clock"]
    assert versions == sorted(versions)


def test_migrate_applies_once_then_is_a_no_op(empty_database: str) -> None:
    everything = [m.version for m in available_migrations()]
    assert migrate(empty_database) == everything
    assert migrate(empty_database) == []
    assert [
        r[0] for r in query(empty_database, "SELECT version FROM schema_migrations ORDER BY 1")
    ] == everything


def test_cli_migrate_twice(empty_database: str) -> None:
    first = run_migrations(empty_database)
    assert first.returncode == 0, first.stderr
    assert "0001_initial" in first.stdout
    assert "0002_glucose_and_device_clock" in first.stdout
    second = run_migrations(empty_database)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout


def test_migrated_template_clone_is_up_to_date(database_url: str) -> None:
    assert migrate(database_url) == []


def test_concurrent_migrators_do_not_race(empty_database: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(migrate, [empty_database] * 4))
    applied = [r for r in results if r]
    assert len(applied) == 1, results
    assert query(empty_database, "SELECT count(*) FROM schema_migrations") == [(len(applied[0]),)]


def test_schema_needs_no_extension(empty_database: str) -> None:
    migrate(empty_database)
    # TimescaleDB only where the server offers it (0003 picks the path); nothing else, ever.
    [(flavor,)] = query(empty_database, "SELECT flavor FROM storage_settings")
    expected = [("plpgsql",)] if flavor == "native" else [("plpgsql",), ("timescaledb",)]
    assert query(empty_database, "SELECT extname FROM pg_extension ORDER BY 1") == expected


def test_access_log_is_append_only(database_url: str) -> None:
    query(database_url, "INSERT INTO access_log (actor, action) VALUES ('t', 't') RETURNING id")
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        query(database_url, "UPDATE access_log SET actor = 'x'")
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        query(database_url, "DELETE FROM access_log")


def test_0002_applies_on_top_of_0001_with_readings_in_it(empty_database: str) -> None:
    # A database as the previous release left it: 0001 only, with a stored reading.
    initial, *later = available_migrations()
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute(CREATE_TABLE)
        with conn.transaction():
            conn.execute(initial.sql.encode())
            conn.execute(RECORD, (initial.version,))
        conn.execute(
            "INSERT INTO patients VALUES ('p-1', 'Old'); "
            "INSERT INTO devices (device_key) VALUES ('Acme/BP-1/1'); "
            "INSERT INTO gateways VALUES ('gw-old', now(), now()); "
            "INSERT INTO bp_readings (reading_id, patient_id, device_key, gateway_id, measured_at,"
            " received_at, systolic_mmhg, diastolic_mmhg, reported_unit, raw) VALUES"
            " ('00000000-0000-0000-0000-000000000001', 'p-1', 'Acme/BP-1/1', 'gw-old',"
            " '2026-01-01T08:00Z', '2026-01-01T08:00:02Z', 120, 80, 'mmHg', '\\x00')"
        )
    assert migrate(empty_database) == [m.version for m in later]
    assert "0002_glucose_and_device_clock" in [m.version for m in later]
    # The old reading reads as what the wire contract assumes of a gateway without clock fields.
    assert query(
        empty_database, "SELECT time_source, clock_status, clock_offset_s FROM bp_readings"
    ) == [("device", "unknown", None)]
    assert query(empty_database, "SELECT count(*) FROM glucose_readings") == [(0,)]


INSERT_GLUCOSE = """
INSERT INTO glucose_readings (reading_id, patient_id, device_key, gateway_id, measured_at,
                              received_at, sequence_number, mmol_per_l, mg_per_dl, reported_unit,
                              time_source, raw)
VALUES (gen_random_uuid(), 'p-check', 'Acme/GL-1/check', 'gw-check', now(), now(), %s, %s, %s, %s,
        %s, '\\x00')
"""


@pytest.mark.parametrize(
    ("seq", "mmol", "unit", "source"),
    [
        pytest.param(65536, 5.5, "mol/L", "device", id="sequence-number-over-uint16"),
        pytest.param(-1, 5.5, "mol/L", "device", id="negative-sequence-number"),
        pytest.param(1, -5.5, "mol/L", "device", id="negative-concentration"),
        pytest.param(1, 5.5, "mmol/L", "device", id="unit-not-an-si-unit"),
        pytest.param(1, 5.5, "mol/L", "guessed", id="unknown-time-source"),
    ],
)
def test_glucose_table_refuses_what_the_contract_cannot_say(
    database_url: str, seq: int, mmol: float, unit: str, source: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO patients VALUES ('p-check', 'P') ON CONFLICT DO NOTHING; "
            "INSERT INTO devices (device_key) VALUES ('Acme/GL-1/check') ON CONFLICT DO NOTHING; "
            "INSERT INTO gateways VALUES ('gw-check', now(), now()) ON CONFLICT DO NOTHING"
        )
        conn.execute(INSERT_GLUCOSE, (65535, 5.5, 99.1, "kg/L", "received"))  # the edge: fine
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(INSERT_GLUCOSE, (seq, mmol, mmol * 18.016, unit, source))
