"""Helpers of the API tests: a generated signing key, tokens per role, the app over ASGI or on
a real port, a world of organisations, clinicians, patients, care teams and consents built
through the admin and patient API, and readings and alerts written with plain SQL (so these
tests do not depend on how the ingest path or the rules evolve)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import uvicorn
from fastapi import FastAPI
from psycopg.types.json import Jsonb

from ingest_server.api import create_app
from ingest_server.api.settings import ApiSettings
from ingest_server.auth import AuthSettings, Role, issue_dev_token
from ingest_server.notify import WebhookSettings
from ingest_server.settings import IngestSettings


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def auth_settings(**overrides: Any) -> AuthSettings:
    """Settings with a freshly generated development key (never a key from the repository)."""
    return AuthSettings(dev_signing_key=secrets.token_urlsafe(40), **overrides)


def bearer(auth: AuthSettings, role: Role | str, subject: str, **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_dev_token(auth, subject=subject, role=role, **kw)}"}


def make_app(
    settings: IngestSettings,
    auth: AuthSettings,
    *,
    api: ApiSettings | None = None,
    webhooks: WebhookSettings | None = None,
) -> FastAPI:
    return create_app(
        settings,
        auth_settings=auth,
        api_settings=api or ApiSettings(),
        webhook_settings=webhooks or WebhookSettings(enabled=False),
    )


@contextlib.asynccontextmanager
async def asgi_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan, called in-process (no socket)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4567))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield http


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


@contextlib.asynccontextmanager
async def served(app: Any, *, timeout: float = 10.0) -> AsyncIterator[str]:
    """``app`` (any ASGI app) served by uvicorn on a free loopback port; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(), name=f"uvicorn-{port}")
    try:
        async with asyncio.timeout(timeout):
            while not server.started:
                if task.done():
                    await task
                    raise AssertionError("test server stopped during start-up")
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(timeout):
            await task


# --- a world built through the API ----------------------------------------------------------------


@dataclass
class World:
    """Two organisations, three clinicians, two patients; ``alice`` (org A) treats ``pat``."""

    auth: AuthSettings
    http: httpx.AsyncClient
    org_a: str
    org_b: str
    alice: str  # clinician of org A, in pat's care team
    bob: str  # clinician of org A, not in any care team
    carol: str  # clinician of org B, in pat's care team (org B has no consent)
    pat: str  # the patient
    other: str  # another patient, nobody's

    def as_admin(self) -> dict[str, str]:
        return bearer(self.auth, Role.ADMIN, "root")

    def as_clinician(self, clinician_id: str) -> dict[str, str]:
        return bearer(self.auth, Role.CLINICIAN, clinician_id)

    def as_patient(self, patient_id: str) -> dict[str, str]:
        return bearer(self.auth, Role.PATIENT, patient_id)

    async def grant(
        self,
        patient_id: str,
        grantee_kind: str,
        grantee_id: str,
        *,
        purpose: str = "treatment",
        valid_until: datetime | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "grantee_kind": grantee_kind,
            "grantee_id": grantee_id,
            "purpose": purpose,
        }
        if valid_until is not None:
            body["valid_until"] = valid_until.isoformat()
        response = await self.http.post(
            f"/patients/{patient_id}/consents", json=body, headers=self.as_patient(patient_id)
        )
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    async def revoke(self, patient_id: str, consent_id: int) -> httpx.Response:
        return await self.http.post(
            f"/patients/{patient_id}/consents/{consent_id}/revoke",
            headers=self.as_patient(patient_id),
        )


async def build_world(http: httpx.AsyncClient, auth: AuthSettings) -> World:
    w = World(
        auth,
        http,
        unique("org-a"),
        unique("org-b"),
        unique("dr-alice"),
        unique("dr-bob"),
        unique("dr-carol"),
        unique("pat"),
        unique("other"),
    )
    admin = w.as_admin()

    async def ok(response: httpx.Response, expected: int = 200) -> dict[str, Any]:
        assert response.status_code == expected, (response.request.url, response.text)
        return response.json()  # type: ignore[no-any-return]

    for org, name in ((w.org_a, "City Clinic"), (w.org_b, "Rural Practice")):
        await ok(await http.put(f"/admin/organisations/{org}", json={"name": name}, headers=admin))
    for clinician, org in ((w.alice, w.org_a), (w.bob, w.org_a), (w.carol, w.org_b)):
        body = {"display_name": clinician, "organisation_id": org, "profession": "GP"}
        await ok(await http.put(f"/admin/clinicians/{clinician}", json=body, headers=admin))
    for patient, name in ((w.pat, "Pat Example"), (w.other, "Other Person")):
        await ok(
            await http.put(
                f"/admin/patients/{patient}",
                json={"display_name": name, "timezone": "Europe/Berlin"},
                headers=admin,
            )
        )
    for clinician in (w.alice, w.carol):
        await ok(
            await http.post(
                f"/admin/patients/{w.pat}/care-team",
                json={"clinician_id": clinician},
                headers=admin,
            ),
            201,
        )
    return w


# --- readings and alerts, written as the ingest path would ----------------------------------------


def sql(
    database_url: str, query: str, params: Sequence[Any] | None = None
) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        cur = conn.execute(query, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def add_bp_reading(
    database_url: str,
    patient_id: str,
    measured_at: datetime,
    systolic: float | None,
    diastolic: float | None,
    *,
    pulse: float | None = 70.0,
    device_key: str = "Acme/BP-1/SN-API",
    gateway_id: str = "gw-api",
    flags: Sequence[str] = (),
) -> uuid.UUID:
    reading_id = uuid.uuid4()
    mean = None if systolic is None or diastolic is None else (systolic + 2 * diastolic) / 3
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO gateways (gateway_id, first_seen_at, last_seen_at)"
            " VALUES (%s, now(), now()) ON CONFLICT DO NOTHING",
            (gateway_id,),
        )
        conn.execute(
            "INSERT INTO devices (device_key, manufacturer, model, serial_number, kind)"
            " VALUES (%s, 'Acme', 'BP-1', %s, 'blood_pressure') ON CONFLICT DO NOTHING",
            (device_key, device_key.rsplit("/", 1)[-1]),
        )
        conn.execute(
            "INSERT INTO bp_readings (reading_id, patient_id, device_key, gateway_id, measured_at,"
            " device_time, received_at, systolic_mmhg, diastolic_mmhg, mean_arterial_mmhg,"
            " pulse_bpm, reported_unit, flags, raw)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'mmHg', %s, %s)",
            (
                reading_id,
                patient_id,
                device_key,
                gateway_id,
                measured_at,
                measured_at.replace(tzinfo=None),
                measured_at + timedelta(seconds=2),
                systolic,
                diastolic,
                mean,
                pulse,
                list(flags),
                b"\x1e",
            ),
        )
    return reading_id


def add_glucose_reading(
    database_url: str,
    patient_id: str,
    measured_at: datetime,
    mmol_per_l: float | None,
    *,
    sequence_number: int = 1,
    reported_unit: str = "mol/L",
    sample_type: str = "capillary_plasma",
    control_solution: bool = False,
    device_key: str = "Acme/GL-1/SN-API",
    gateway_id: str = "gw-api",
) -> uuid.UUID:
    reading_id = uuid.uuid4()
    mg = None if mmol_per_l is None else mmol_per_l * 18.016
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO gateways (gateway_id, first_seen_at, last_seen_at)"
            " VALUES (%s, now(), now()) ON CONFLICT DO NOTHING",
            (gateway_id,),
        )
        conn.execute(
            "INSERT INTO devices (device_key, manufacturer, model, serial_number, kind)"
            " VALUES (%s, 'Acme', 'GL-1', %s, 'glucose') ON CONFLICT DO NOTHING",
            (device_key, device_key.rsplit("/", 1)[-1]),
        )
        conn.execute(
            "INSERT INTO glucose_readings (reading_id, patient_id, device_key, gateway_id,"
            " measured_at, device_time, received_at, sequence_number, mmol_per_l, mg_per_dl,"
            " reported_unit, sample_type, sample_location, control_solution, raw)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'finger', %s, %s)",
            (
                reading_id,
                patient_id,
                device_key,
                gateway_id,
                measured_at,
                measured_at.replace(tzinfo=None),
                measured_at + timedelta(minutes=5),
                sequence_number,
                mmol_per_l,
                mg,
                reported_unit,
                sample_type,
                control_solution,
                b"\x02",
            ),
        )
    return reading_id


def add_alert(
    database_url: str,
    patient_id: str,
    *,
    rule_id: str | None = None,
    severity: str = "high",
    title: str = "Blood pressure above target",
    reading_ids: Sequence[uuid.UUID] = (),
    seen_at: datetime | None = None,
) -> int:
    """An open alert, as the ingest path raises one."""
    seen = seen_at or datetime.now(UTC)
    evidence = {"reading_ids": [str(r) for r in reading_ids], "statistics": {}}
    ((alert_id,),) = sql(
        database_url,
        "INSERT INTO alerts (patient_id, rule_id, rule_version, severity, status, title,"
        " explanation, evidence, occurrences, first_seen_at, last_seen_at)"
        " VALUES (%s, %s, 1, %s, 'open', %s, 'because the test says so', %s, 1, %s, %s)"
        " RETURNING alert_id",
        (patient_id, rule_id or unique("test.rule"), severity, title, Jsonb(evidence), seen, seen),
    )
    return int(alert_id)


def escalate(database_url: str, alert_id: int, severity: str) -> None:
    """What the ingest path does when a confirming reading arrives."""
    sql(
        database_url,
        "UPDATE alerts SET severity = %s, occurrences = occurrences + 1, last_seen_at = now(),"
        " updated_at = now() WHERE alert_id = %s",
        (severity, alert_id),
    )


def audit_rows(database_url: str, patient_id: str) -> list[tuple[Any, ...]]:
    return sql(
        database_url,
        "SELECT actor, role, action, purpose, client_address, outcome FROM access_log"
        " WHERE patient_id = %s ORDER BY id",
        (patient_id,),
    )


def minutes_ago(minutes: float) -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0)
