"""Storage upkeep: which path the schema took, future partitions, retention.

The work is the SQL function ``homewatch_maintain_storage`` (migration 0003), so that any
scheduler can run it (the ingest service, ``homewatch storage maintain``, pg_cron); this module
calls it and reads the storage layout. The ingest service runs it at start and then every
``storage_maintenance_interval_s``: weeks of partitions are kept ready ahead, so a missed run
costs nothing, and a reading beyond them still lands in the DEFAULT partition.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest_server import db
from ingest_server.db import Connection
from ingest_server.errors import DatabaseError

log = logging.getLogger(__name__)

MAINTAIN = "SELECT action, relation, detail FROM homewatch_maintain_storage(coalesce(%s, now()))"

SETTINGS = """
SELECT flavor, summary_timezone, partition_interval, partitions_behind, partitions_ahead,
       retention, compress_after
FROM storage_settings
"""

PARTITIONS = """
SELECT p.partition::text AS name, %s AS parent, p.lower_bound, p.upper_bound,
       (SELECT reltuples::bigint FROM pg_class WHERE oid = p.partition) AS estimated_rows
FROM homewatch_partition_bounds(%s::regclass) AS p
ORDER BY p.lower_bound NULLS FIRST
"""

#: The partitioned (or hypertable) readings tables.
READINGS_TABLES = ("bp_readings", "glucose_readings")


@dataclass(frozen=True, slots=True)
class StorageSettings:
    flavor: str  # "native" or "timescaledb"
    summary_timezone: str
    partition_interval: timedelta
    partitions_behind: int
    partitions_ahead: int
    retention: timedelta
    compress_after: timedelta


@dataclass(frozen=True, slots=True)
class MaintenanceAction:
    action: str  # created, dropped, deleted, forgotten
    relation: str
    detail: str


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    parent: str
    lower_bound: datetime | None  # None: the DEFAULT partition
    upper_bound: datetime | None
    estimated_rows: int


async def maintain(conn: Connection, at: datetime | None = None) -> list[MaintenanceAction]:
    """Run the maintenance (as of ``at``, default now) in one transaction; what it did."""
    async with db.transaction(conn):
        return await db.fetch_all(conn, MAINTAIN, (at,), MaintenanceAction)


async def settings(conn: Connection) -> StorageSettings:
    row = await db.fetch_one(conn, SETTINGS, None, StorageSettings)
    if row is None:
        raise DatabaseError("storage_settings is empty: is the schema migrated (0003)?")
    return row


async def partitions(conn: Connection) -> list[Partition]:
    """The native partitions of the readings tables, DEFAULT first (none with TimescaleDB)."""
    if (await settings(conn)).flavor != "native":
        return []
    found: list[Partition] = []
    for table in READINGS_TABLES:
        found += await db.fetch_all(conn, PARTITIONS, (table, table), Partition)
    return found


async def run_periodically(pool: db.Pool, interval_s: float) -> None:
    """Maintain now and every ``interval_s`` until cancelled; failures are logged, not fatal
    (the partitions made ahead and the DEFAULT partition carry the ingest path meanwhile)."""
    while True:
        try:
            async with db.connection(pool) as conn:
                for action in await maintain(conn):
                    log.info("storage %s %s: %s", action.action, action.relation, action.detail)
        except DatabaseError as exc:
            log.error("storage maintenance failed (next try in %.0f s): %s", interval_s, exc)
        await asyncio.sleep(interval_s)
