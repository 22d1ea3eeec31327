"""``create_app(settings)``: the FastAPI application, its lifespan and routers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from ingest_server import db
from ingest_server.api import errors
from ingest_server.api.routes import (
    admin,
    admin_devices,
    alerts,
    auth,
    clinician,
    consents,
    fhir,
    gateway,
    glucose,
    health,
    live,
    patients,
    readings,
)
from ingest_server.api.schemas.common import ERROR_RESPONSES
from ingest_server.api.settings import ApiSettings
from ingest_server.auth.settings import AuthSettings
from ingest_server.auth.tokens import TokenVerifier
from ingest_server.notify import WebhookDispatcher, WebhookSettings
from ingest_server.settings import IngestSettings

log = logging.getLogger(__name__)

DESCRIPTION = """
The clinician, patient and admin API of homewatch.

Every route but `/health` and this document needs a bearer JWT (`Authorization: Bearer ...`)
with one role: **clinician**, **patient**, **admin** or **gateway**. A clinician reads a
patient's data only as an active member of the patient's care team under an active consent
for the request's purpose (`X-Purpose-Of-Use`, default `treatment`); a patient reads only
their own. Every read and change of health data, and every refusal, is in the audit trail.
"""


def api_router() -> APIRouter:
    router = APIRouter()
    router.include_router(health.router)
    for module in (
        auth,
        readings,
        glucose,
        alerts,
        patients,
        consents,
        live,  # before clinician: /alerts/stream before /alerts/{alert_id}
        clinician,
        admin,
        admin_devices,
        gateway,
        fhir,
    ):
        router.include_router(module.router, responses=ERROR_RESPONSES)
    return router


def create_app(
    settings: IngestSettings,
    *,
    pool: db.Pool | None = None,
    auth_settings: AuthSettings | None = None,
    api_settings: ApiSettings | None = None,
    webhook_settings: WebhookSettings | None = None,
) -> FastAPI:
    """The API. With ``pool`` (already open, e.g. shared with the consumer) the app uses it and
    leaves it open; without, the lifespan opens its own pool from ``settings.database_url``.
    Auth, API and webhook settings not given come from the environment (``HOMEWATCH_AUTH_*``,
    ``HOMEWATCH_API_*``, ``HOMEWATCH_WEBHOOK_*``)."""
    auth_settings = auth_settings or AuthSettings()
    api_settings = api_settings or ApiSettings()
    webhook_settings = webhook_settings or WebhookSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.api_settings = api_settings
        app.state.auth_settings = auth_settings
        app.state.verifier = TokenVerifier(auth_settings)
        async with contextlib.AsyncExitStack() as stack:
            if pool is not None:
                app.state.pool = pool
            else:
                own = db.create_pool(
                    settings.database_url,
                    min_size=settings.pool_min_size,
                    max_size=settings.pool_max_size,
                )
                app.state.pool = await stack.enter_async_context(own)
            if webhook_settings.enabled:
                dispatcher = WebhookDispatcher(app.state.pool, webhook_settings)
                task = asyncio.create_task(dispatcher.run(), name="webhook-dispatcher")
                stack.push_async_callback(_cancel, task)
            yield

    app = FastAPI(
        title="homewatch",
        version="0.2.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        max_body_size=api_settings.max_body_bytes,
    )
    app.include_router(api_router())
    errors.install(app)
    return app


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
