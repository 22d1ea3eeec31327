"""Tokens: the identity provider's (verified with keys from its JWKS URL, served here by a
local HTTP server), the server's own development tokens and login, and the operator CLI."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import CliRunner

from homewatch.cli_admin import admin_app
from ingest_server.auth import AuthSettings, Role, TokenVerifier, Unauthenticated
from ingest_server.settings import IngestSettings
from tests.integration.api.api_support import asgi_client, auth_settings, bearer, make_app, served

ISSUER = "https://idp.example.test/realms/homewatch"


class KeyServer:
    """The identity provider's side: key pairs, a JWKS document, tokens."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.published: list[str] = []
        self.requests = 0
        self.down = False

    def add_rsa(self, kid: str, publish: bool = True) -> None:
        self.keys[kid] = ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))
        if publish:
            self.published.append(kid)

    def add_ec(self, kid: str) -> None:
        self.keys[kid] = ("ES256", ec.generate_private_key(ec.SECP256R1()))
        self.published.append(kid)

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid in self.published:
            alg, private = self.keys[kid]
            algorithm = jwt.get_algorithm_by_name(alg)
            jwk = json.loads(algorithm.to_jwk(private.public_key()))
            out.append({**jwk, "kid": kid, "use": "sig", "alg": alg})
        return {"keys": out}

    def token(self, kid: str, **claims: Any) -> str:
        alg, private = self.keys[kid]
        now = datetime.now(UTC)
        body = {"iss": ISSUER, "aud": "homewatch-api", "sub": "dr-idp", "roles": ["clinician"],
                "iat": now, "exp": now + timedelta(minutes=5), **claims}  # fmt: skip
        return jwt.encode(body, private, alg, headers={"kid": kid})

    def app(self) -> Starlette:
        async def jwks(_: Request) -> JSONResponse:
            self.requests += 1
            if self.down:
                return JSONResponse({"error": "down"}, status_code=503)
            return JSONResponse(self.jwks())

        return Starlette(routes=[Route("/certs", jwks)])


async def _me(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})


async def test_identity_provider_tokens_verified_with_its_published_keys(
    settings: IngestSettings,
) -> None:
    idp = KeyServer()
    idp.add_rsa("rsa-1")
    idp.add_ec("ec-1")
    idp.add_rsa("rsa-next", publish=False)
    async with served(idp.app()) as idp_url:
        auth = AuthSettings(
            idp_issuer=ISSUER,
            idp_jwks_url=f"{idp_url}/certs",
            role_claim="roles",
            idp_jwks_min_refetch_s=0,
        )
        async with asgi_client(make_app(settings, auth)) as http:
            response = await _me(http, idp.token("rsa-1"))
            assert response.status_code == 200, response.text
            assert response.json() == {"role": "clinician", "subject": "dr-idp", "issuer": ISSUER}
            assert (await _me(http, idp.token("ec-1", roles="patient", sub="p-1"))).json()[
                "role"
            ] == "patient"
            assert idp.requests == 1  # cached

            # Key rotation: a token signed with a key published after our last fetch.
            assert (await _me(http, idp.token("rsa-next"))).status_code == 401
            idp.published.append("rsa-next")
            assert (await _me(http, idp.token("rsa-next"))).status_code == 200

            impostor = KeyServer()
            impostor.add_rsa("rsa-1")  # same kid, another key
            public_pem = (
                idp.keys["rsa-1"][1]
                .public_key()
                .public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
            now = datetime.now(UTC)
            confused = jwt.encode(  # HS256 "signed" with the public key: algorithm confusion
                {
                    "iss": ISSUER,
                    "aud": "homewatch-api",
                    "sub": "x",
                    "roles": "admin",
                    "iat": now,
                    "exp": now + timedelta(minutes=5),
                },
                public_pem.decode()[:64],
                "HS256",
                headers={"kid": "rsa-1"},
            )
            unsigned = jwt.encode(
                {
                    "iss": ISSUER,
                    "aud": "homewatch-api",
                    "sub": "x",
                    "roles": "admin",
                    "iat": now,
                    "exp": now + timedelta(minutes=5),
                },
                None,
                "none",
            )
            for bad in (
                impostor.token("rsa-1"),
                confused,
                unsigned,
                idp.token("rsa-1", aud="another-api"),
                idp.token("rsa-1", iss="https://elsewhere"),
                idp.token("rsa-1", exp=now - timedelta(minutes=5)),
                idp.token("rsa-1", roles=["clinician", "admin"]),  # which one?
                idp.token("rsa-1", roles=["offline_access"]),
                idp.token("rsa-1", sub="has spaces"),
                idp.token("unknown-kid") if "unknown-kid" in idp.keys else "x.y.z",
            ):
                response = await _me(http, bad)
                assert response.status_code == 401, bad
            # The provider goes down: keys we have still work, and nothing crashes.
            idp.down = True
            assert (await _me(http, idp.token("ec-1"))).status_code == 200
            idp.add_rsa("rsa-later")
            assert (await _me(http, idp.token("rsa-later"))).status_code == 401


async def test_injected_key_set_and_custom_subject_claim() -> None:
    idp = KeyServer()
    idp.add_ec("ec-inline")
    auth = AuthSettings(
        idp_issuer=ISSUER,
        idp_jwks=json.dumps(idp.jwks()),
        role_claim="roles",
        subject_claim="homewatch_id",
    )
    verifier = TokenVerifier(auth)
    principal = await verifier.verify(idp.token("ec-inline", homewatch_id="c-42"))
    assert (principal.role, principal.subject, principal.actor) == (
        Role.CLINICIAN,
        "c-42",
        "clinician:c-42",
    )
    with pytest.raises(Unauthenticated):
        await verifier.verify(idp.token("ec-inline"))  # no homewatch_id claim
    with pytest.raises(Unauthenticated, match="configured"):
        await TokenVerifier(AuthSettings(dev_signing_key=None)).verify(idp.token("ec-inline"))


def test_settings_refuse_unsafe_configurations() -> None:
    for bad in (
        {"dev_signing_key": "short"},
        {"idp_issuer": ISSUER},  # no keys
        {"idp_jwks_url": "http://x/certs"},  # no issuer
        {"idp_issuer": ISSUER, "idp_jwks_url": "http://x", "idp_algorithms": ["HS256"]},
        {"idp_issuer": ISSUER, "idp_jwks": "not json"},
        {"idp_issuer": "homewatch-dev", "idp_jwks_url": "http://x"},
    ):
        with pytest.raises(ValueError):
            AuthSettings(**bad)


async def test_development_login_issues_tokens_for_users(settings: IngestSettings) -> None:
    auth = auth_settings(dev_login=True)
    admin = bearer(auth, Role.ADMIN, "root")
    async with asgi_client(make_app(settings, auth)) as http:
        user = {
            "username": "alice",
            "password": "correct horse battery",
            "role": "clinician",
            "subject": "dr-a",
        }
        assert (await http.put("/admin/users", json=user, headers=admin)).status_code == 200
        assert (
            await http.put("/admin/users", json={**user, "password": "short"}, headers=admin)
        ).status_code == 422
        login = await http.post(
            "/auth/token", data={"username": "alice", "password": "correct horse battery"}
        )
        assert login.status_code == 200, login.text
        token = login.json()
        assert (token["token_type"], token["role"], token["expires_in"]) == (
            "bearer",
            "clinician",
            3600,
        )
        assert (await _me(http, token["access_token"])).json()["subject"] == "dr-a"
        for creds in (
            {"username": "alice", "password": "wrong password!"},
            {"username": "nobody", "password": "x" * 12},
        ):
            response = await http.post("/auth/token", data=creds)
            assert response.status_code == 401 and response.json() == {
                "detail": "wrong user name or password"
            }
        listed = (await http.get("/admin/users", headers=admin)).json()
        assert [(u["username"], u["role"]) for u in listed] == [("alice", "clinician")]
        assert "password" not in json.dumps(listed) or all("password_hash" not in u for u in listed)
    async with asgi_client(make_app(settings, auth_settings())) as http:  # login not enabled
        response = await http.post(
            "/auth/token", data={"username": "alice", "password": "correct horse battery"}
        )
        assert response.status_code == 404


async def test_operator_cli_generates_keys_issues_tokens_and_creates_users(
    settings: IngestSettings, database_url: str
) -> None:
    runner = CliRunner()
    generated = runner.invoke(admin_app, ["generate-key"])
    assert generated.exit_code == 0 and len(generated.output.strip()) >= 48
    key = generated.output.strip()
    issued = runner.invoke(
        admin_app,
        ["issue-token", "--subject", "root", "--role", "admin", "--ttl", "120"],
        env={"HOMEWATCH_AUTH_DEV_SIGNING_KEY": key},
    )
    assert issued.exit_code == 0, issued.output
    auth = AuthSettings(dev_signing_key=key, dev_login=True)
    principal = await TokenVerifier(auth).verify(issued.output.strip())
    assert (principal.role, principal.subject) == (Role.ADMIN, "root")
    no_key = runner.invoke(
        admin_app,
        ["issue-token", "--subject", "root", "--role", "admin"],
        env={"HOMEWATCH_AUTH_DEV_SIGNING_KEY": ""},
    )
    assert no_key.exit_code == 2
    bad_role = runner.invoke(
        admin_app,
        ["issue-token", "--subject", "root", "--role", "king"],
        env={"HOMEWATCH_AUTH_DEV_SIGNING_KEY": key},
    )
    assert bad_role.exit_code == 2 and "error" in bad_role.output

    name = f"op-{uuid.uuid4().hex[:6]}"
    password = secrets.token_urlsafe(16)
    created = await asyncio.to_thread(
        runner.invoke,
        admin_app,
        [
            "create-user",
            "--username",
            name,
            "--role",
            "admin",
            "--subject",
            name,
            "--database-url",
            database_url,
        ],
        input=password + "\n",
    )
    assert created.exit_code == 0, created.output
    async with asgi_client(make_app(settings, auth)) as http:
        login = await http.post("/auth/token", data={"username": name, "password": password})
        assert login.status_code == 200 and login.json()["role"] == "admin"
    weak = await asyncio.to_thread(
        runner.invoke,
        admin_app,
        [
            "create-user",
            "--username",
            name,
            "--role",
            "admin",
            "--subject",
            name,
            "--database-url",
            database_url,
        ],
        input="short\n",
    )
    assert weak.exit_code == 2
