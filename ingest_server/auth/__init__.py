"""Authentication and authorisation of the API: bearer JWTs, roles, and the access policy.

Tokens come from two issuers: the server's own development login (HS256, a key from the
environment) and, in production, an external identity provider whose signing keys are fetched
from its JWKS URL. Either way the token says who (``sub``) and in which role; what that role may
read about which patient is decided here, in ``access``, against the care team and the consents.
"""

from ingest_server.auth.errors import AuthError, Forbidden, Unauthenticated
from ingest_server.auth.principal import Principal, Role
from ingest_server.auth.settings import AuthSettings
from ingest_server.auth.tokens import TokenVerifier, issue_dev_token

__all__ = [
    "AuthError",
    "AuthSettings",
    "Forbidden",
    "Principal",
    "Role",
    "TokenVerifier",
    "Unauthenticated",
    "issue_dev_token",
]
