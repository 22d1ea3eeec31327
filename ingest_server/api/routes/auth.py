"""The server's own login (development, small deployments) and who-am-I."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from pydantic import BaseModel

from ingest_server.api.deps import ConnectionDep, PrincipalDep
from ingest_server.api.schemas.admin import Token
from ingest_server.auth.errors import Unauthenticated
from ingest_server.auth.principal import Role
from ingest_server.auth.settings import AuthSettings
from ingest_server.auth.tokens import issue_dev_token
from ingest_server.profile import users
from ingest_server.profile.errors import NotFound

log = logging.getLogger(__name__)
router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=Token)
async def token(
    request: Request,
    conn: ConnectionDep,
    username: Annotated[str, Form(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")],
    password: Annotated[str, Form(min_length=1, max_length=256)],
    grant_type: Annotated[str, Form(pattern="^password$")] = "password",
) -> Token:
    """OAuth2 password grant against the server's own users; only when the development login
    is enabled (``HOMEWATCH_AUTH_DEV_LOGIN``) and a signing key is set. Production tokens come
    from the identity provider."""
    settings: AuthSettings = request.app.state.auth_settings
    if not settings.dev_login or settings.dev_signing_key is None:
        raise NotFound("login", "/auth/token")
    found = await users.authenticate(conn, username, password)
    if found is None:
        log.info("login refused for %r from %s", username, request.client)
        raise Unauthenticated(
            f"bad credentials for {username!r}", public="wrong user name or password"
        )
    role, subject = found
    return Token(
        access_token=issue_dev_token(settings, subject=subject, role=role),
        expires_in=settings.token_ttl_s,
        role=Role(role),
    )


class Me(BaseModel):
    role: Role
    subject: str
    issuer: str


@router.get("/me", response_model=Me)
async def me(principal: PrincipalDep) -> Me:
    """Who the token says the caller is."""
    return Me(role=principal.role, subject=principal.subject, issuer=principal.issuer)
