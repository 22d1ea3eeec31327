"""Versioned SQL migrations: ``migrations/NNNN_name.sql``, applied in order, each exactly once.

Our own runner rather than a migration tool because the whole job is 40 lines of plain psycopg
(advisory lock, one transaction per file, a ``schema_migrations`` table) and a tool would add a
dependency and a second connection stack for no extra behaviour we need.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

import psycopg

from ingest_server.errors import MigrationError

log = logging.getLogger(__name__)

#: pg_advisory_lock key held while migrating, so two migrators cannot race ("hwmigrat").
MIGRATION_LOCK_KEY = 0x68776D6967726174

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
APPLIED = "SELECT version FROM schema_migrations"
RECORD = "INSERT INTO schema_migrations (version) VALUES (%s)"


@dataclass(frozen=True, slots=True)
class Migration:
    version: str  # the file name without ".sql", e.g. "0001_initial"
    sql: str


def available_migrations() -> list[Migration]:
    """The packaged migrations, in order."""
    folder = resources.files("ingest_server").joinpath("migrations")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(f.name.removesuffix(".sql"), f.read_text("utf-8")) for f in files]


def migrate(conninfo: str) -> list[str]:
    """Bring the database at ``conninfo`` up to date; returns the versions applied now."""
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute(CREATE_TABLE)
            done = {row[0] for row in conn.execute(APPLIED)}
            for migration in available_migrations():
                if migration.version in done:
                    continue
                log.info("applying migration %s", migration.version)
                try:
                    with conn.transaction():
                        conn.execute(migration.sql.encode())  # no parameters: a script is fine
                        conn.execute(RECORD, (migration.version,))
                except psycopg.Error as exc:
                    raise MigrationError(migration.version, str(exc)) from exc
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now
