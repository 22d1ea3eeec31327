"""A PostgreSQL for the demo when no database URL is given: ``pgserver`` (PostgreSQL 16 in a wheel).

Demo only: pgserver is unmaintained since 2024, listens on a Unix socket only and ships no
extensions but plpgsql — production runs PostgreSQL/TimescaleDB given by URL. Run as root, it
makes its data directory's parents world-readable up to ``/``, so the data directory is always a
fresh one under the system temporary directory, never under a home directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

log = logging.getLogger(__name__)


class DatabaseError(Exception):
    """The embedded database could not be started."""


def _start(pgserver, data_dir: Path):
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (as under CI); pgserver then uses /tmp.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        return pgserver.get_server(data_dir, cleanup_mode="delete")


@contextlib.asynccontextmanager
async def embedded_postgres() -> AsyncIterator[str]:
    """Start a throw-away PostgreSQL; yield its connection URL; stop and delete it on exit."""
    try:
        import pgserver
    except ImportError as exc:
        raise DatabaseError(
            "pgserver is not installed: pip install 'homewatch[embedded]', or pass --database-url"
        ) from exc
    data_dir = Path(tempfile.mkdtemp(prefix="homewatch-pg-"))
    try:
        server = await asyncio.to_thread(_start, pgserver, data_dir)
    except Exception as exc:  # pgserver raises bare Exceptions with initdb/pg_ctl output
        shutil.rmtree(data_dir, ignore_errors=True)
        raise DatabaseError(f"embedded PostgreSQL failed to start in {data_dir}: {exc}") from exc
    try:
        url = server.get_uri()
        log.info("embedded PostgreSQL at %s", url)
        yield url
    finally:
        await asyncio.to_thread(server.cleanup)
        shutil.rmtree(data_dir, ignore_errors=True)
