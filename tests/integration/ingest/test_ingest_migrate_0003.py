"""Migration 0003 on a database as 0002 left it, with readings in it: nothing lost, ids
registered, summaries built, partitions holding the rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from ingest_server.migrate import CREATE_TABLE, RECORD, available_migrations, migrate
from tests.fixtures.postgres import database_url_for
from tests.integration.ingest.ingest_support import query
from tests.integration.ingest.summary_check import (
    assert_same,
    expected_bp_daily,
    expected_glucose_daily,
    stored_daily,
)

OLD_ROWS = """
INSERT INTO patients VALUES ('p-1', 'Old');
INSERT INTO devices (device_key) VALUES ('Acme/BP-1/1'), ('Acme/GL-1/1');
INSERT INTO gateways VALUES ('gw-old', now(), now());
INSERT INTO bp_readings (reading_id, patient_id, device_key, gateway_id, measured_at,
                         received_at, systolic_mmhg, diastolic_mmhg, pulse_bpm, reported_unit,
                         raw, stored_at)
VALUES ('00000000-0000-0000-0000-000000000001', 'p-1', 'Acme/BP-1/1', 'gw-old',
        now() - interval '2 days 3 hours', now(), 131, 85, 70, 'mmHg', '\\x01',
        now() - interval '2 days'),
       -- the same reading again, stored before 0003 with another clock correction
       ('00000000-0000-0000-0000-000000000001', 'p-1', 'Acme/BP-1/1', 'gw-old',
        now() - interval '2 days 2 hours', now(), 131, 85, 70, 'mmHg', '\\x01',
        now() - interval '1 day'),
       ('00000000-0000-0000-0000-000000000002', 'p-1', 'Acme/BP-1/1', 'gw-old',
        now() - interval '400 days', now(), 125, 80, NULL, 'mmHg', '\\x02', now());
INSERT INTO glucose_readings (reading_id, patient_id, device_key, gateway_id, measured_at,
                              received_at, sequence_number, mmol_per_l, mg_per_dl, reported_unit,
                              raw)
VALUES ('00000000-0000-0000-0000-000000000003', 'p-1', 'Acme/GL-1/1', 'gw-old',
        now() - interval '1 day', now(), 1, 5.5, 99.1, 'mol/L', '\\x03');
"""


@pytest.fixture
def database_at_0002(postgres_server: str) -> Iterator[str]:
    name = f"hwtest_0002_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = database_url_for(name, postgres_server)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(CREATE_TABLE)
            for migration in available_migrations():
                if migration.version >= "0003":
                    break
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(RECORD, (migration.version,))
            conn.execute(OLD_ROWS)
        yield url
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_0003_keeps_every_row_and_registers_each_id_once(database_at_0002: str) -> None:
    url = database_at_0002
    applied = migrate(url)
    assert applied[0] == "0003_time_series_storage"
    assert query(url, "SELECT count(*) FROM bp_readings") == [(3,)]
    assert query(url, "SELECT count(*) FROM glucose_readings") == [(1,)]
    # One registry entry per id; for the id stored twice, the copy stored first.
    assert query(
        url,
        "SELECT r.reading_id::text, r.measured_at = b.measured_at FROM reading_ids r"
        " JOIN bp_readings b USING (reading_id)"
        " WHERE b.stored_at = (SELECT min(stored_at) FROM bp_readings x"
        " WHERE x.reading_id = b.reading_id) ORDER BY 1",
    ) == [
        ("00000000-0000-0000-0000-000000000001", True),
        ("00000000-0000-0000-0000-000000000002", True),
    ]
    assert query(url, "SELECT count(*) FROM reading_ids") == [(3,)]
    # Summaries built from the rows there are (the old duplicate counts: a migration does not
    # judge what was stored), on this path as on the other.
    assert_same(stored_daily(url, "bp_daily", "p-1"), expected_bp_daily(url, "p-1", "UTC"))
    assert_same(
        stored_daily(url, "glucose_daily", "p-1"), expected_glucose_daily(url, "p-1", "UTC")
    )
    [(flavor,)] = query(url, "SELECT flavor FROM storage_settings")
    if flavor == "native":
        # Recent rows in weekly partitions, the one from 400 days ago in the DEFAULT partition.
        assert query(
            url,
            "SELECT tableoid::regclass::text LIKE 'bp_readings_p%', count(*) FROM bp_readings"
            " GROUP BY 1 ORDER BY 1",
        ) == [(False, 1), (True, 2)]
    assert migrate(url) == []
