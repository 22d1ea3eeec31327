from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from ingest_server.auth import AuthSettings
from ingest_server.settings import IngestSettings
from tests.integration.api.api_support import (
    World,
    asgi_client,
    auth_settings,
    build_world,
    make_app,
)


@pytest.fixture
def settings(database_url: str) -> IngestSettings:
    return IngestSettings(database_url=database_url, api_port=0)


@pytest.fixture
def auth() -> AuthSettings:
    return auth_settings()


@pytest.fixture
async def http(settings: IngestSettings, auth: AuthSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(make_app(settings, auth)) as client:
        yield client


@pytest.fixture
async def world(http: httpx.AsyncClient, auth: AuthSettings) -> World:
    return await build_world(http, auth)
