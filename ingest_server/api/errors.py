"""Our exceptions as HTTP answers: a status and a short detail, never a stack trace, an SQL
statement or a library's message. FHIR endpoints answer with an OperationOutcome."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ingest_server.auth.errors import AuthError, Forbidden, Unauthenticated
from ingest_server.errors import DatabaseError, DatabaseRejected, DatabaseUnavailable
from ingest_server.fhir import FHIR_JSON, operation_outcome
from ingest_server.profile.errors import Conflict, InvalidValue, NotFound

log = logging.getLogger(__name__)

#: OperationOutcome issue type per HTTP status.
_ISSUE = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 409: "conflict",
          413: "too-long", 422: "invalid", 500: "exception", 503: "transient"}  # fmt: skip


def respond(
    request: Request, code: int, detail: object, headers: dict[str, str] | None = None
) -> JSONResponse:
    if request.url.path.startswith("/fhir"):
        text = detail if isinstance(detail, str) else "invalid request"
        return JSONResponse(
            operation_outcome(_ISSUE.get(code, "processing"), text),
            code,
            headers=headers,
            media_type=FHIR_JSON,
        )
    return JSONResponse({"detail": detail}, code, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(request: Request, exc: Unauthenticated) -> JSONResponse:
        log.info("401 for %s %s: %s", request.method, request.url.path, exc)
        return respond(request, 401, exc.public, {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        log.info("403 for %s %s: %s", request.method, request.url.path, exc)
        return respond(request, 403, exc.public)

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> JSONResponse:
        return respond(request, 401, exc.public, {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return respond(request, 404, exc.public)

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> JSONResponse:
        return respond(request, 409, exc.public)

    @app.exception_handler(InvalidValue)
    async def _invalid(request: Request, exc: InvalidValue) -> JSONResponse:
        return respond(request, 422, exc.public)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The messages and locations, not the rejected input itself (it may be personal data).
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        if request.url.path.startswith("/fhir"):
            first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
            text = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
            return respond(request, 422, text)
        return JSONResponse({"detail": errors}, status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(UnicodeError)
    async def _unicode(request: Request, exc: UnicodeError) -> JSONResponse:
        return respond(request, 422, "text is not valid Unicode")

    @app.exception_handler(DatabaseUnavailable)
    async def _unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        log.warning("API request failed, database unavailable: %s", exc)
        return respond(request, 503, "database unavailable")

    @app.exception_handler(DatabaseRejected)
    async def _rejected(request: Request, exc: DatabaseRejected) -> JSONResponse:
        log.warning("API request refused by the database: %s", exc)
        return respond(request, 422, "the data was refused")

    @app.exception_handler(DatabaseError)
    async def _database_error(request: Request, exc: DatabaseError) -> JSONResponse:
        log.error("API request failed in the database: %s", exc)
        return respond(request, 500, "database error")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("API request %s %s failed", request.method, request.url.path)
        return respond(request, 500, "internal error")
