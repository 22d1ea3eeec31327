"""Schema migrations: versioned, idempotent, safe to run from two places at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg import sql

from ingest_server.migrate import available_migrations, migrate
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
    assert versions[0] == "0001_initial"
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
    assert query(empty_database, "SELECT extname FROM pg_extension ORDER BY 1") == [("plpgsql",)]


def test_access_log_is_append_only(database_url: str) -> None:
    query(database_url, "INSERT INTO access_log (actor, action) VALUES ('t', 't') RETURNING id")
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        query(database_url, "UPDATE access_log SET actor = 'x'")
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        query(database_url, "DELETE FROM access_log")
