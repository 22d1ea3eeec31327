"""Dependencies of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from ingest_server import db, store
from ingest_server.settings import IngestSettings

#: No authentication yet: every read is audited as this actor. Auth and consent checks (the
#: treating clinician of the care team, under an active consent) are a later issue.
ANONYMOUS = "anonymous"


def get_settings(request: Request) -> IngestSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_pool(request: Request) -> db.Pool:
    return request.app.state.pool  # type: ignore[no-any-return]


async def get_connection(request: Request) -> AsyncIterator[db.Connection]:
    async with db.connection(get_pool(request)) as conn:
        yield conn


PoolDep = Annotated[db.Pool, Depends(get_pool)]
SettingsDep = Annotated[IngestSettings, Depends(get_settings)]
ConnectionDep = Annotated[db.Connection, Depends(get_connection)]


async def audit_patient_read(
    conn: db.Connection, request: Request, patient_id: str, action: str
) -> None:
    """404 for an unknown patient; otherwise append the read to ``access_log``.

    Call it inside the transaction that reads, so no data leaves without its audit row.
    """
    if await store.get_patient(conn, patient_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patient {patient_id!r}")
    await store.log_access(
        conn,
        actor=ANONYMOUS,
        action=action,
        patient_id=patient_id,
        purpose="api",
        client_address=request.client.host if request.client else None,
    )
