"""Errors of authentication (who are you: 401) and authorisation (you may not: 403)."""

from __future__ import annotations

from ingest_server.errors import IngestError


class AuthError(IngestError):
    """Root of the auth errors. ``public`` is what the caller is told; the message (logged) may
    say more."""

    public = "not authorised"

    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        if public is not None:
            self.public = public


class Unauthenticated(AuthError):
    """No token, or one that is malformed, expired, unsigned by a trusted key or for another
    audience: HTTP 401."""

    public = "not authenticated"


class Forbidden(AuthError):
    """A valid token whose role or relation to the patient does not allow the request: 403."""

    public = "forbidden"


class AuthNotConfigured(Unauthenticated):
    """Neither a development key nor an identity provider is configured: no token can be valid."""

    public = "authentication is not configured on this server"
