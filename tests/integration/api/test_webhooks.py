"""Webhooks for urgent alerts: a real HTTP receiver on a local port, HMAC signatures checked
the way a receiver would, retries with back-off, the delivery log, and failure after the last
attempt."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ingest_server.auth import AuthSettings
from ingest_server.notify import SIGNATURE_HEADER, WebhookSettings, sign, verify
from ingest_server.settings import IngestSettings
from tests.integration.api.api_support import (
    add_alert,
    asgi_client,
    audit_rows,
    build_world,
    escalate,
    free_port,
    make_app,
    served,
    sql,
)

FAST = WebhookSettings(
    poll_interval_s=0.05, retry_base_s=0.05, retry_max_s=0.2, max_attempts=4, timeout_s=2
)


@dataclass
class Receiver:
    """Answers ``failures`` requests with 500, then 204; keeps what it received."""

    failures: int = 0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.received.append((dict(request.headers), await request.body()))
            if len(self.received) <= self.failures:
                return Response("busy", status_code=500)
            return Response(status_code=204)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


async def eventually(check: Callable[[], Awaitable[Any] | Any], seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_urgent_alerts_are_signed_retried_and_logged(
    settings: IngestSettings, auth: AuthSettings, database_url: str
) -> None:
    receiver = Receiver(failures=2)
    async with (
        served(receiver.app()) as hook_url,
        asgi_client(make_app(settings, auth, webhooks=FAST)) as http,
    ):
        w = await build_world(http, auth)
        admin = w.as_admin()
        created = await http.post(
            "/admin/webhooks",
            json={"url": f"{hook_url}/hook", "min_severity": "urgent"},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        secret, endpoint = created.json()["secret"], created.json()["endpoint"]
        assert "secret" not in (await http.get("/admin/webhooks", headers=admin)).json()[0]

        high = add_alert(database_url, w.pat, severity="high")
        await asyncio.sleep(0.3)
        assert receiver.received == []  # below the endpoint's threshold
        escalate(database_url, high, "urgent")  # a confirming reading: now it is news

        deliveries = await eventually(lambda: _delivered(http, admin, endpoint["endpoint_id"]))
        [delivery] = deliveries
        assert (delivery["alert_id"], delivery["event"], delivery["attempts"]) == (
            high,
            "alert.urgent",
            3,
        )
        assert [(a["attempt"], a["status_code"], a["error"]) for a in delivery["log"]] == [
            (1, 500, "HTTP 500"),
            (2, 500, "HTTP 500"),
            (3, 204, None),
        ]
        assert len(receiver.received) == 3
        headers, body = receiver.received[-1]
        assert verify(secret, headers[SIGNATURE_HEADER.lower()], body, now=time.time())
        assert not verify(secret, headers[SIGNATURE_HEADER.lower()], body + b" ", now=time.time())
        assert not verify("whsec_other", headers[SIGNATURE_HEADER.lower()], body, now=time.time())
        assert headers["x-homewatch-delivery"] == str(delivery["delivery_id"])
        payload = json.loads(body)
        assert payload["event"] == "alert.urgent"
        assert (payload["alert"]["alert_id"], payload["alert"]["patient_id"]) == (high, w.pat)
        # Seen again and again by the dispatcher, announced once.
        await asyncio.sleep(0.3)
        assert len(receiver.received) == 3
    disclosures = [r for r in audit_rows(database_url, w.pat) if r[0] == "system:webhook"]
    assert len(disclosures) == 3 and {r[2] for r in disclosures} == {"send webhook alert.urgent"}


async def _delivered(http: httpx.AsyncClient, admin: dict[str, str], endpoint_id: int) -> Any:
    response = await http.get(
        "/admin/webhooks/deliveries", params={"endpoint_id": endpoint_id}, headers=admin
    )
    rows = response.json()
    return rows if rows and all(r["status"] == "delivered" for r in rows) else None


async def test_a_delivery_fails_after_the_last_attempt(
    settings: IngestSettings, auth: AuthSettings, database_url: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    async with asgi_client(make_app(settings, auth, webhooks=FAST)) as http:
        w = await build_world(http, auth)
        created = await http.post(
            "/admin/webhooks", json={"url": dead, "min_severity": "high"}, headers=w.as_admin()
        )
        endpoint_id = created.json()["endpoint"]["endpoint_id"]
        alert_id = add_alert(database_url, w.pat, severity="high")

        async def failed() -> Any:
            rows = (
                await http.get(
                    "/admin/webhooks/deliveries",
                    params={"alert_id": alert_id},
                    headers=w.as_admin(),
                )
            ).json()
            return rows if rows and rows[0]["status"] == "failed" else None

        [delivery] = await eventually(failed)
        assert delivery["endpoint_id"] == endpoint_id
        assert [a["attempt"] for a in delivery["log"]] == [1, 2, 3, 4]
        assert all(
            a["status_code"] is None and a["error"].startswith("ConnectError")
            for a in delivery["log"]
        )
        # A deactivated endpoint gets nothing more.
        assert (await http.delete(f"/admin/webhooks/{endpoint_id}", headers=w.as_admin())).json()[
            "active"
        ] is False
        later = add_alert(database_url, w.pat, severity="urgent")
        await asyncio.sleep(0.3)
        assert sql(
            database_url,
            "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = %s AND alert_id = %s",
            (endpoint_id, later),
        ) == [(0,)]
    for bad in ({"url": "ftp://example.org/x"}, {"url": "http://x", "min_severity": "loud"}):
        async with asgi_client(make_app(settings, auth)) as http:
            response = await http.post("/admin/webhooks", json=bad, headers=w.as_admin())
            assert response.status_code == 422, bad


def test_signatures_bind_the_time_and_the_body() -> None:
    body = b'{"event":"alert.urgent"}'
    now = int(time.time())
    header = sign("whsec_k", now, body)
    assert header.startswith(f"t={now},v1=") and len(header.split("v1=")[1]) == 64
    assert verify("whsec_k", header, body, now=now + 299)
    assert not verify("whsec_k", header, body, now=now + 301)  # a replay, too late
    forged_time = header.replace(f"t={now}", f"t={now + 1}")
    assert not verify("whsec_k", forged_time, body, now=now)
    for garbage in ("", "t=1", "v1=00", "t=x,v1=00", "nonsense"):
        assert not verify("whsec_k", garbage, body, now=now)
