"""Bearer JWTs: issuing the server's own (development) tokens, verifying any token.

The one module that imports PyJWT. A token is trusted when its issuer is one we know and its
signature verifies with that issuer's key under that issuer's algorithms: HS256 with the
development key for our own issuer, the provider's published keys (JWKS, asymmetric algorithms
only) for the identity provider. Choosing the key by the unverified ``iss`` is safe because the
algorithm list is fixed per issuer, never taken from the token.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt

from ingest_server.auth.errors import AuthNotConfigured, Unauthenticated
from ingest_server.auth.principal import SUBJECT, Principal, Role
from ingest_server.auth.settings import AuthSettings

log = logging.getLogger(__name__)

_DEV_ALGORITHM = "HS256"
#: Claims every token must carry (besides the configured subject and role claims).
_REQUIRED = ["exp", "iat", "iss", "aud"]
#: Longest token we look at; a real one is well under 4 KiB.
MAX_TOKEN_LENGTH = 8192


def issue_dev_token(
    settings: AuthSettings,
    *,
    subject: str,
    role: Role | str,
    ttl_s: int | None = None,
    now: datetime | None = None,
) -> str:
    """A token of the server's own issuer for ``subject`` in ``role`` (needs the dev key)."""
    if settings.dev_signing_key is None:
        raise AuthNotConfigured("no development signing key configured")
    if not SUBJECT.match(subject):
        raise ValueError(f"not a valid subject: {subject!r}")
    issued = now or datetime.now(UTC)
    claims = {
        "iss": settings.dev_issuer,
        "aud": settings.audience,
        "sub": subject,
        settings.role_claim: str(Role(role)),
        "iat": issued,
        "nbf": issued,
        "exp": issued + timedelta(seconds=ttl_s or settings.token_ttl_s),
        "jti": uuid.uuid4().hex,
    }
    if settings.subject_claim != "sub":
        claims[settings.subject_claim] = subject
    return jwt.encode(claims, settings.dev_signing_key.get_secret_value(), _DEV_ALGORITHM)


class _KeySet:
    """The identity provider's signing keys: fetched from its JWKS URL (or given inline),
    cached, fetched again when they age or a token names a key we do not have."""

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -1e9
        self._lock = asyncio.Lock()
        inline = settings.inline_jwks()
        if inline is not None:
            self._keys = self._parse(inline)
            self._fetched_at = float("inf")

    @staticmethod
    def _parse(document: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []):
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK.from_dict(entry)
            except jwt.PyJWTError as exc:
                log.warning("ignoring a key of the identity provider's set: %s", exc)
                continue
            keys[str(entry.get("kid", ""))] = key
        return keys

    async def key(self, kid: str) -> jwt.PyJWK:
        age = time.monotonic() - self._fetched_at
        if kid not in self._keys or age > self._settings.idp_jwks_cache_s:
            async with self._lock:
                age = time.monotonic() - self._fetched_at
                stale = age > self._settings.idp_jwks_cache_s
                unknown = kid not in self._keys
                if stale or (unknown and age >= self._settings.idp_jwks_min_refetch_s):
                    await self._fetch()
        key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated(f"no key {kid!r} in the identity provider's key set")
        return key

    async def _fetch(self) -> None:
        url = self._settings.idp_jwks_url
        if url is None:
            return
        self._fetched_at = time.monotonic()  # also on failure: no retry storm
        try:
            async with httpx.AsyncClient(timeout=self._settings.idp_jwks_timeout_s) as http:
                response = await http.get(url, headers={"Accept": "application/json"})
                response.raise_for_status()
                document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # Keep the keys we had: a provider outage must not log everyone out at once.
            log.warning("could not fetch the identity provider's keys from %s: %s", url, exc)
            return
        if not isinstance(document, dict):
            log.warning("the identity provider's key set at %s is not a JSON object", url)
            return
        self._keys = self._parse(document)
        log.info("fetched %d signing keys of the identity provider", len(self._keys))


class TokenVerifier:
    """``await verifier.verify(token)`` -> the ``Principal``, or ``Unauthenticated``."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._idp_keys = _KeySet(settings) if settings.idp_configured else None

    async def verify(self, token: str) -> Principal:
        s = self.settings
        if s.dev_signing_key is None and self._idp_keys is None:
            raise AuthNotConfigured("no development key and no identity provider configured")
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated("token too long")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"malformed token: {exc}") from exc
        issuer = unverified.get("iss")
        key: Any
        if s.dev_signing_key is not None and issuer == s.dev_issuer:
            key, algorithms, audience = (
                s.dev_signing_key.get_secret_value(),
                [_DEV_ALGORITHM],
                s.audience,
            )
        elif self._idp_keys is not None and issuer == s.idp_issuer:
            key = await self._idp_keys.key(str(header.get("kid", "")))
            algorithms, audience = list(s.idp_algorithms), s.idp_audience or s.audience
        else:
            raise Unauthenticated(f"token of an unknown issuer {issuer!r}")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=audience,
                issuer=issuer,
                leeway=s.leeway_s,
                options={"require": [*_REQUIRED, s.subject_claim, s.role_claim]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"token rejected: {exc}") from exc
        return Principal(
            role=_role(claims.get(s.role_claim)),
            subject=_subject(claims.get(s.subject_claim)),
            issuer=str(issuer),
        )


def _role(value: object) -> Role:
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    known = {r.value for r in Role}
    roles = {Role(v) for v in names if isinstance(v, str) and v in known}
    if len(roles) != 1:
        raise Unauthenticated(f"token must carry exactly one homewatch role, has {value!r}")
    return roles.pop()


def _subject(value: object) -> str:
    if not isinstance(value, str) or not SUBJECT.match(value):
        raise Unauthenticated("token subject missing or not a valid id")
    return value
