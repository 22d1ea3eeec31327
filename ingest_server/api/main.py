"""``create_app(settings)``: the FastAPI application, its lifespan and routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, status
from fastapi.responses import JSONResponse

from ingest_server import db
from ingest_server.api.routes import alerts, glucose, health, readings
from ingest_server.errors import DatabaseError, DatabaseUnavailable
from ingest_server.settings import IngestSettings

log = logging.getLogger(__name__)


def api_router() -> APIRouter:
    router = APIRouter()
    router.include_router(health.router)
    router.include_router(readings.router)
    router.include_router(glucose.router)
    router.include_router(alerts.router)
    return router


def create_app(settings: IngestSettings, *, pool: db.Pool | None = None) -> FastAPI:
    """The API. With ``pool`` (already open, e.g. shared with the consumer) the app uses it and
    leaves it open; without, the lifespan opens its own pool from ``settings.database_url``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        if pool is not None:
            app.state.pool = pool
            yield
            return
        own = db.create_pool(
            settings.database_url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
        )
        async with own:
            app.state.pool = own
            yield

    app = FastAPI(title="homewatch ingest", version="0.1.0", lifespan=lifespan)
    app.include_router(api_router())

    @app.exception_handler(DatabaseUnavailable)
    async def _unavailable(_request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        log.warning("API request failed, database unavailable: %s", exc)
        return JSONResponse({"detail": "database unavailable"}, status.HTTP_503_SERVICE_UNAVAILABLE)

    @app.exception_handler(DatabaseError)
    async def _database_error(_request: Request, exc: DatabaseError) -> JSONResponse:
        log.error("API request failed in the database: %s", exc)
        return JSONResponse({"detail": "database error"}, status.HTTP_500_INTERNAL_SERVER_ERROR)

    return app
