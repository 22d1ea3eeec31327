"""The one entry point of psycopg: the connection pool, typed queries and error translation.

The rest of the ingest server sees ``Connection``, the helpers below and our own exceptions.
Pool connections are in autocommit mode; a transaction is an explicit ``async with
transaction(conn)`` block, so the commit point is visible in the code that needs it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from ingest_server.errors import DatabaseError, DatabaseRejected, DatabaseUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Connection = AsyncConnection[Any]
Pool = AsyncConnectionPool
__all__ = ["Connection", "Jsonb", "Pool", "connection", "create_pool", "fetch_all", "fetch_one"]

#: Failures worth retrying: no connection, and transient conflicts between transactions.
_TRANSIENT = (
    psycopg.OperationalError,  # includes the pool's PoolTimeout and a lost connection
    psycopg.InterfaceError,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
)
_REJECTED = (psycopg.DataError, psycopg.IntegrityError)


def _partition_attached_meanwhile(exc: psycopg.Error) -> bool:
    """A row routed to a DEFAULT partition while the storage maintenance attached the partition
    for its range: the statement planned its routing before the attach, and the DEFAULT partition
    no longer accepts the row. Not about the data: the same statement succeeds when retried."""
    return (
        isinstance(exc, psycopg.errors.CheckViolation)
        and exc.diag.constraint_name is None
        and "partition constraint" in (exc.diag.message_primary or "")
    )


async def _configure(conn: Connection) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")
    # Short OLTP statements over arrays of unknown size: the planner's row estimates for
    # unnest() make JIT look worth it, and compiling cost 100 ms on a 13 ms statement (measured).
    await conn.execute("SET jit = off")


def create_pool(
    conninfo: str, *, min_size: int = 1, max_size: int = 4, timeout: float = 10.0
) -> Pool:
    """A closed pool; open it with ``async with pool`` (or ``await pool.open()``)."""
    return AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        open=False,
        timeout=timeout,
        kwargs={"autocommit": True},
        configure=_configure,
        check=AsyncConnectionPool.check_connection,
        name="homewatch-ingest",
    )


def translate(exc: psycopg.Error) -> DatabaseError:
    """Our exception for a psycopg one (raise it ``from exc``)."""
    if isinstance(exc, _TRANSIENT) or _partition_attached_meanwhile(exc):
        return DatabaseUnavailable(str(exc) or type(exc).__name__)
    if isinstance(exc, _REJECTED):
        return DatabaseRejected(str(exc))
    return DatabaseError(f"{type(exc).__name__}: {exc}")


@asynccontextmanager
async def connection(pool: Pool) -> AsyncIterator[Connection]:
    """A pooled connection; psycopg errors raised inside come out as our ``DatabaseError``."""
    try:
        async with pool.connection() as conn:
            yield conn
    except psycopg.Error as exc:
        raise translate(exc) from exc


def transaction(conn: Connection) -> AbstractAsyncContextManager[Any]:
    """One transaction: committed when the block exits normally, rolled back otherwise (inside
    another transaction block: a savepoint, released or rolled back)."""
    return conn.transaction()


def in_transaction(conn: Connection) -> bool:
    """Whether ``conn`` is inside a transaction (what was written may still be rolled back)."""
    return conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


async def fetch_all(
    conn: Connection, query: str, params: Sequence[Any] | dict[str, Any] | None, row: type[T]
) -> list[T]:
    async with conn.cursor(row_factory=class_row(row)) as cur:
        await cur.execute(query, params)  # type: ignore[arg-type]
        return await cur.fetchall()


async def fetch_one(
    conn: Connection, query: str, params: Sequence[Any] | dict[str, Any] | None, row: type[T]
) -> T | None:
    async with conn.cursor(row_factory=class_row(row)) as cur:
        await cur.execute(query, params)  # type: ignore[arg-type]
        return await cur.fetchone()


async def fetch_tuples(
    conn: Connection,
    query: str,
    params: Sequence[Any] | dict[str, Any] | None = None,
    *,
    binary: bool = False,
) -> list[tuple[Any, ...]]:
    """All rows as tuples; ``binary``: results in binary format (faster to load for many rows of
    timestamps and numbers)."""
    async with conn.cursor(binary=binary) as cur:
        await cur.execute(query, params)  # type: ignore[arg-type]
        return await cur.fetchall()


async def execute(
    conn: Connection, query: str, params: Sequence[Any] | dict[str, Any] | None = None
) -> int:
    """Run one statement; returns the number of rows it touched."""
    async with conn.cursor() as cur:
        await cur.execute(query, params)  # type: ignore[arg-type]
        return cur.rowcount


async def execute_many_returning(
    conn: Connection, query: str, params_seq: Iterable[Sequence[Any] | dict[str, Any]]
) -> list[tuple[Any, ...]]:
    """Run ``query`` (with a RETURNING clause) once per parameter set; all returned rows."""
    rows: list[tuple[Any, ...]] = []
    async with conn.cursor() as cur:
        await cur.executemany(query, params_seq, returning=True)  # type: ignore[arg-type]
        async for result in cur.results():
            rows.extend(await result.fetchall())
    return rows


async def open_pool(pool: Pool, timeout: float) -> None:
    """Open ``pool`` and wait until its first connections work (``DatabaseUnavailable`` if not)."""
    try:
        await pool.open(wait=True, timeout=timeout)
    except psycopg.Error as exc:
        await pool.close()
        raise translate(exc) from exc
