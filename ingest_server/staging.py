"""Bulk writes of readings: COPY (binary) into staging tables, then one idempotent INSERT.

Per connection, one temporary staging table per reading kind (``ON COMMIT DELETE ROWS``: empty
at the start of every transaction). A batch is copied in, then a single statement registers the
new reading ids in ``reading_ids`` (``ON CONFLICT DO NOTHING``: the arbiter of idempotency, by id
alone, so a reading sent again with another ``measured_at`` is still a duplicate) and inserts the
readings whose id was new, each kind into its table. Ids are registered in sorted order, so two
transactions writing overlapping batches wait for each other instead of deadlocking.

``ord`` is a reading's position in the batch: of two copies of one id in a batch, the first wins.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from homewatch import wire
from ingest_server import db
from ingest_server.db import Connection


@dataclass(frozen=True, slots=True)
class StagedKind:
    """How readings of one kind (``wire.Reading.kind``) go to their table."""

    kind: str
    table: str
    staging: str
    #: (column, type) after ``ord``, in COPY order: the table's columns of the same names.
    columns: tuple[tuple[str, str], ...]
    #: The COPY row of one reading (without ``ord``) for its gateway and patient.
    row: Callable[[str, Any, str], tuple[Any, ...]]


def _clock(r: wire.BloodPressureReading | wire.GlucoseReading) -> tuple[Any, ...]:
    return (str(r.time_source), str(r.device_clock.status), r.device_clock.offset_seconds)


def _bp_row(gateway_id: str, r: wire.BloodPressureReading, patient_id: str) -> tuple[Any, ...]:
    v = r.values
    return (
        r.reading_id,
        patient_id,
        r.device.device_key,
        gateway_id,
        r.measured_at,
        r.device_time,
        r.received_at,
        *_clock(r),
        v.systolic.value,
        v.diastolic.value,
        v.mean_arterial_pressure.value,
        v.pulse_rate.value if v.pulse_rate else None,
        v.reported_unit,
        v.user_id,
        [str(f) for f in r.flags],
        bytes.fromhex(r.raw),
    )


def _glucose_row(gateway_id: str, r: wire.GlucoseReading, patient_id: str) -> tuple[Any, ...]:
    v = r.values
    return (
        r.reading_id,
        patient_id,
        r.device.device_key,
        gateway_id,
        r.measured_at,
        r.device_time,
        r.received_at,
        *_clock(r),
        r.sequence_number,
        v.mmol_per_l.value,
        v.mg_per_dl.value,
        v.reported_unit,
        v.sample_type,
        v.sample_location,
        list(v.sensor_status),
        None if r.context is None else db.Jsonb(r.context.model_dump(mode="json")),
        r.control_solution,
        bytes.fromhex(r.raw),
        None if r.raw_context is None else bytes.fromhex(r.raw_context),
    )


_COMMON = (
    ("reading_id", "uuid"),
    ("patient_id", "text"),
    ("device_key", "text"),
    ("gateway_id", "text"),
    ("measured_at", "timestamptz"),
    ("device_time", "timestamp"),
    ("received_at", "timestamptz"),
    ("time_source", "text"),
    ("clock_status", "text"),
    ("clock_offset_s", "float8"),
)

#: Per reading kind. A kind added to the wire contract without an entry here is a defect: the
#: consumer quarantines its messages as "processing failed" instead of losing them.
KINDS: dict[str, StagedKind] = {
    "blood_pressure": StagedKind(
        kind="blood_pressure",
        table="bp_readings",
        staging="homewatch_staging_bp",
        columns=(
            *_COMMON,
            ("systolic_mmhg", "float4"),
            ("diastolic_mmhg", "float4"),
            ("mean_arterial_mmhg", "float4"),
            ("pulse_bpm", "float4"),
            ("reported_unit", "text"),
            ("user_id", "int2"),
            ("flags", "text[]"),
            ("raw", "bytea"),
        ),
        row=_bp_row,
    ),
    "glucose": StagedKind(
        kind="glucose",
        table="glucose_readings",
        staging="homewatch_staging_glucose",
        columns=(
            *_COMMON,
            ("sequence_number", "int4"),
            ("mmol_per_l", "float4"),
            ("mg_per_dl", "float4"),
            ("reported_unit", "text"),
            ("sample_type", "text"),
            ("sample_location", "text"),
            ("sensor_status", "text[]"),
            ("context", "jsonb"),
            ("control_solution", "bool"),
            ("raw", "bytea"),
            ("raw_context", "bytea"),
        ),
        row=_glucose_row,
    ),
}

_PG_TYPES = {"float4": "real", "float8": "double precision", "int2": "smallint", "int4": "integer"}


def _staging_ddl(kind: StagedKind) -> sql.Composed:
    columns = [sql.SQL("ord integer NOT NULL")] + [
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(_PG_TYPES.get(pg_type, pg_type)))
        for name, pg_type in kind.columns
    ]
    return sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
        sql.Identifier(kind.staging), sql.SQL(", ").join(columns)
    )


def _copy_statement(kind: StagedKind) -> sql.Composed:
    names = [sql.Identifier("ord"), *(sql.Identifier(n) for n, _ in kind.columns)]
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(kind.staging), sql.SQL(", ").join(names)
    )


def _insert_statement() -> sql.Composed:
    """Register the staged ids that are new, insert those readings; returns the ids inserted."""
    candidates = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT reading_id, measured_at, ord FROM {}").format(sql.Identifier(k.staging))
        for k in KINDS.values()
    )
    inserts = []
    for k in KINDS.values():
        cols = sql.SQL(", ").join(sql.Identifier(n) for n, _ in k.columns)
        inserts.append(
            sql.SQL(
                "{cte} AS (INSERT INTO {table} ({cols})"
                " SELECT DISTINCT ON (s.reading_id) {scols} FROM {staging} AS s"
                " JOIN registered USING (reading_id) ORDER BY s.reading_id, s.ord"
                " ON CONFLICT DO NOTHING RETURNING reading_id)"
            ).format(
                cte=sql.Identifier(f"new_{k.kind}"),
                table=sql.Identifier(k.table),
                cols=cols,
                scols=sql.SQL(", ").join(
                    sql.SQL("s.{}").format(sql.Identifier(n)) for n, _ in k.columns
                ),
                staging=sql.Identifier(k.staging),
            )
        )
    returned = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT reading_id FROM {}").format(sql.Identifier(f"new_{k.kind}"))
        for k in KINDS.values()
    )
    return sql.SQL(
        "WITH candidates AS ({candidates}),"
        " registered AS (INSERT INTO reading_ids (reading_id, measured_at)"
        " SELECT DISTINCT ON (reading_id) reading_id, measured_at FROM candidates"
        " ORDER BY reading_id, ord ON CONFLICT (reading_id) DO NOTHING RETURNING reading_id),"
        " {inserts} {returned}"
    ).format(candidates=candidates, inserts=sql.SQL(", ").join(inserts), returned=returned)


INSERT_STAGED = _insert_statement()

#: Connections whose staging tables exist (temporary tables live as long as the connection).
_prepared: weakref.WeakSet[Connection] = weakref.WeakSet()


async def prepare(conn: Connection) -> None:
    """Create this connection's staging tables, once (``IF NOT EXISTS``: after ``forget``)."""
    if conn in _prepared:
        return
    for kind in KINDS.values():
        await db.execute(conn, _staging_ddl(kind))
    _prepared.add(conn)


def forget(conn: Connection) -> None:
    """The transaction that may have created the staging tables was rolled back."""
    _prepared.discard(conn)


#: A reading to write: (its position in the batch, its message's gateway, it, its patient).
StagedReading = tuple[int, str, wire.Reading, str]


async def write(conn: Connection, staged: Sequence[StagedReading]) -> set[uuid.UUID]:
    """Write ``staged`` (inside the caller's transaction); the ids that were new and are now
    stored. Every other staged id was stored before (or earlier in ``staged``)."""
    if not staged:
        return set()
    await prepare(conn)
    by_kind: dict[str, list[StagedReading]] = {}
    for s in staged:
        by_kind.setdefault(s[2].kind, []).append(s)
    async with conn.cursor(binary=True) as cur:
        for kind_name, items in by_kind.items():
            kind = KINDS[kind_name]
            row = kind.row
            async with cur.copy(_copy_statement(kind)) as copy:
                copy.set_types(["int4", *(t for _, t in kind.columns)])
                for ord_, gateway_id, reading, patient_id in items:
                    await copy.write_row((ord_, *row(gateway_id, reading, patient_id)))
        await cur.execute(INSERT_STAGED)
        return {row[0] for row in await cur.fetchall()}
