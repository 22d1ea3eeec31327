from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ingest_server import db


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[db.Pool]:
    pool = db.create_pool(database_url, min_size=1, max_size=4)
    await db.open_pool(pool, timeout=10)
    try:
        yield pool
    finally:
        await pool.close()
