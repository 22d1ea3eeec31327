from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status

from ingest_server import db
from ingest_server.api.deps import PoolDep
from ingest_server.api.models import Health
from ingest_server.errors import DatabaseError

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health(pool: PoolDep, response: Response) -> Health:
    """Liveness of the API and reachability of the database (503 when it is unreachable)."""
    try:
        async with db.connection(pool) as conn:
            await db.execute(conn, "SELECT 1")
    except DatabaseError as exc:
        log.warning("health check: database unavailable: %s", exc)
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="degraded", database="unavailable")
    return Health(status="ok", database="ok")
