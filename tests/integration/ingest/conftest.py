from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from homewatch.embedded.broker import BrokerEndpoint
from ingest_server import db
from ingest_server.settings import IngestSettings
from tests.integration.ingest.ingest_support import ingest_settings, unique


@pytest.fixture
def settings(database_url: str, mqtt_broker: BrokerEndpoint, topic_root: str) -> IngestSettings:
    # A root of the test's own: persistent sessions of earlier tests' consumers never share it.
    return ingest_settings(database_url, mqtt_broker.url, f"{topic_root}/{unique('t')}")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[db.Pool]:
    pool = db.create_pool(database_url, min_size=1, max_size=4)
    await db.open_pool(pool, timeout=10)
    try:
        yield pool
    finally:
        await pool.close()
