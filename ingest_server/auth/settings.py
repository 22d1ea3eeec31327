"""Settings of authentication, from ``HOMEWATCH_AUTH_*`` environment variables.

No key lives in the repository: the development signing key and the identity provider's
location come from the environment (or from the caller, in tests). With neither configured the
API answers 401 to everything but ``/health`` and the OpenAPI document.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Asymmetric algorithms only for the identity provider: a symmetric one would let anyone who
#: holds the public JWKS forge tokens, and "none" is never acceptable.
_ALLOWED_IDP_ALGORITHMS = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"}


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOMEWATCH_AUTH_", extra="ignore", frozen=True)

    #: HS256 key of the server's own tokens (development, tests, small deployments); at least
    #: 32 characters. Unset: the server issues and accepts no tokens of its own.
    dev_signing_key: SecretStr | None = None
    #: ``POST /auth/token`` (OAuth2 password grant against ``api_users``) answers only when true.
    dev_login: bool = False
    dev_issuer: str = Field(default="homewatch-dev", min_length=1)
    #: The ``aud`` our own tokens carry and every token must carry.
    audience: str = Field(default="homewatch-api", min_length=1)
    token_ttl_s: int = Field(default=3600, ge=60, le=86400)

    #: The external identity provider (production): its ``iss``, and where its keys are.
    idp_issuer: str | None = None
    #: Audience expected in the provider's tokens (default: ``audience``).
    idp_audience: str | None = None
    idp_jwks_url: str | None = None
    #: A key set given inline (JSON), instead of fetching ``idp_jwks_url``.
    idp_jwks: str | None = None
    idp_algorithms: tuple[str, ...] = ("RS256", "ES256")
    #: How long fetched keys are trusted before they are fetched again.
    idp_jwks_cache_s: float = Field(default=300.0, gt=0)
    idp_jwks_timeout_s: float = Field(default=5.0, gt=0)
    #: A token naming a key we do not have makes us fetch the key set again, at most this often
    #: (a provider publishes a new key before it signs with it; made-up key ids must not turn
    #: into a flood of requests to the provider).
    idp_jwks_min_refetch_s: float = Field(default=30.0, ge=0)
    #: Claims that carry the role (a string or a list with exactly one homewatch role) and the
    #: subject (the clinician/patient/gateway id), so a provider can map its own users.
    role_claim: str = Field(default="role", min_length=1)
    subject_claim: str = Field(default="sub", min_length=1)
    leeway_s: int = Field(default=30, ge=0, le=300)

    @field_validator("dev_signing_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("the development signing key needs at least 32 characters")
        return value

    @field_validator("idp_algorithms")
    @classmethod
    def _asymmetric(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = set(value) - _ALLOWED_IDP_ALGORITHMS
        if bad or not value:
            raise ValueError(
                f"identity provider algorithms must be among {_ALLOWED_IDP_ALGORITHMS}"
            )
        return value

    @field_validator("idp_jwks")
    @classmethod
    def _json_key_set(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                keys = json.loads(value).get("keys")
            except (ValueError, AttributeError) as exc:
                raise ValueError("idp_jwks is not a JSON key set") from exc
            if not isinstance(keys, list):
                raise ValueError("idp_jwks has no 'keys' list")
        return value

    @model_validator(mode="after")
    def _idp_complete(self) -> AuthSettings:
        has_keys = self.idp_jwks_url is not None or self.idp_jwks is not None
        if has_keys != (self.idp_issuer is not None):
            raise ValueError("an identity provider needs both idp_issuer and its keys")
        if self.idp_issuer is not None and self.idp_issuer == self.dev_issuer:
            raise ValueError("idp_issuer must differ from dev_issuer")
        return self

    @property
    def idp_configured(self) -> bool:
        return self.idp_issuer is not None

    def inline_jwks(self) -> dict[str, Any] | None:
        return None if self.idp_jwks is None else json.loads(self.idp_jwks)
