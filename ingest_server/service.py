"""The ingest service: MQTT consumer and REST API in one event loop, sharing one pool.

``run_ingest`` runs until ``stop`` is set. Signals are the caller's business (the CLI sets
``stop``); the embedded uvicorn server does not install signal handlers of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack

import uvicorn

from ingest_server import db, partitions
from ingest_server.api import create_app
from ingest_server.auth.settings import AuthSettings
from ingest_server.consumer import Consumer, OnResult
from ingest_server.errors import DatabaseError, IngestError
from ingest_server.settings import IngestSettings

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 15.0


class ServiceError(IngestError):
    """The service could not start."""


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: it shares the loop with the consumer."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class IngestService:
    """``async with IngestService(settings) as service:`` runs consumer and API inside the block.

    ``service.api_port`` is the port actually bound (useful with ``api_port=0``).
    """

    def __init__(
        self,
        settings: IngestSettings,
        *,
        on_result: OnResult | None = None,
        auth_settings: AuthSettings | None = None,
    ) -> None:
        self.settings = settings
        self._on_result = on_result
        self._auth_settings = auth_settings
        self._stack = AsyncExitStack()
        self._server: _EmbeddedServer | None = None
        self.consumer: Consumer | None = None
        self.api_port: int = 0

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.api_port}"

    async def __aenter__(self) -> IngestService:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def _start(self) -> None:
        s = self.settings
        pool = db.create_pool(s.database_url, min_size=s.pool_min_size, max_size=s.pool_max_size)
        try:
            await db.open_pool(pool, timeout=s.db_start_timeout_s)
        except DatabaseError as exc:
            raise ServiceError(f"database not reachable: {exc}") from exc
        self._stack.push_async_callback(pool.close)

        sock = _bind(s.api_host, s.api_port)
        self._stack.callback(sock.close)
        self.api_port = sock.getsockname()[1]

        self.consumer = await self._stack.enter_async_context(
            Consumer(s, pool, on_result=self._on_result)
        )
        config = uvicorn.Config(
            create_app(s, pool=pool, auth_settings=self._auth_settings),
            log_config=None,
            access_log=False,
            lifespan="on",
            # An open live stream (SSE) must not hold up a shutdown.
            timeout_graceful_shutdown=5,
        )
        self._server = server = _EmbeddedServer(config)
        tasks = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._stack.callback(self._request_api_exit)  # runs before the TaskGroup waits
        api = tasks.create_task(server.serve(sockets=[sock]), name="ingest-api")
        upkeep = tasks.create_task(
            partitions.run_periodically(pool, s.storage_maintenance_interval_s),
            name="storage-maintenance",
        )
        self._stack.callback(upkeep.cancel)
        async with asyncio.timeout(_START_TIMEOUT_S):
            while not server.started:
                if api.done():
                    raise ServiceError(
                        f"API server stopped during start-up on port {self.api_port}"
                    )
                await asyncio.sleep(0.02)
        log.info(
            "ingest service running: API on %s, consuming %r",
            self.api_url,
            self.consumer.subscription,
        )

    @property
    def idle(self) -> bool:
        """Running, with no message queued or being processed."""
        return self.consumer is not None and self.consumer.idle

    def _request_api_exit(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    async def __aexit__(self, *exc_info: object) -> None:
        log.info("ingest service stopping")
        async with asyncio.timeout(_STOP_TIMEOUT_S):
            await self._stack.aclose()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ServiceError(f"cannot listen on {host}:{port}: {exc}") from exc
    sock.setblocking(False)
    return sock


async def run_ingest(
    settings: IngestSettings,
    *,
    on_result: OnResult | None = None,
    stop: asyncio.Event | None = None,
    on_started: Callable[[IngestService], None] | None = None,
) -> None:
    """Run consumer and API until ``stop`` is set (forever without one); clean shutdown.

    ``on_started`` is called once both run (``service.api_port`` is then the bound port).
    """
    async with IngestService(settings, on_result=on_result) as service:
        if on_started is not None:
            on_started(service)
        await (stop or asyncio.Event()).wait()
