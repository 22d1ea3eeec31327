"""The live stream over a real socket (uvicorn): server-sent events for new and changed alerts,
only for patients the caller may see, ending for a clinician as soon as the consent does."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from ingest_server.api.settings import ApiSettings
from ingest_server.auth import AuthSettings
from ingest_server.settings import IngestSettings
from tests.integration.api.api_support import (
    World,
    add_alert,
    audit_rows,
    build_world,
    escalate,
    make_app,
    served,
)

LIVE = ApiSettings(live_poll_interval_s=0.05, live_keepalive_s=0.5, live_max_duration_s=60)


@dataclass
class Stream:
    """Events of one open stream, collected in the background."""

    events: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    comments: list[str] = field(default_factory=list)
    status: int = 0

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def nothing_for(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        assert self.events.empty(), await self.events.get()


@contextlib.asynccontextmanager
async def stream(http: httpx.AsyncClient, headers: dict[str, str]) -> AsyncIterator[Stream]:
    s = Stream()
    opened = asyncio.Event()

    async def read() -> None:
        async with http.stream("GET", "/alerts/stream", headers=headers) as response:
            s.status = response.status_code
            opened.set()
            event: dict[str, Any] = {}
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    s.comments.append(line)
                elif line == "":
                    if "data" in event:
                        await s.events.put({**event, "data": json.loads(event["data"])})
                    event = {}
                else:
                    name, _, value = line.partition(": ")
                    event[name] = value

    task = asyncio.create_task(read())
    await asyncio.wait_for(opened.wait(), 5)
    try:
        yield s
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_stream_sends_visible_alert_changes_until_consent_is_revoked(
    settings: IngestSettings, auth: AuthSettings, database_url: str
) -> None:
    async with (
        served(make_app(settings, auth, api=LIVE)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        w: World = await build_world(http, auth)
        consent = await w.grant(w.pat, "organisation", w.org_a)
        async with (
            stream(http, w.as_clinician(w.alice)) as alice,
            stream(http, w.as_clinician(w.bob)) as bob,
            stream(http, w.as_patient(w.pat)) as pat,
            stream(http, w.as_patient(w.other)) as other,
        ):
            assert (alice.status, bob.status, pat.status) == (200, 200, 200)
            raised = add_alert(database_url, w.pat, severity="high")
            event = await alice.next()
            assert (event["event"], event["data"]["alert_id"], event["data"]["severity"]) == (
                "alert",
                raised,
                "high",
            )

            escalate(database_url, raised, "urgent")
            assert (await alice.next())["data"]["severity"] == "urgent"
            acked = await http.post(
                f"/alerts/{raised}/acknowledge",
                json={"note": "on it"},
                headers=w.as_clinician(w.alice),
            )
            assert acked.status_code == 200
            changed = (await alice.next())["data"]
            assert (changed["status"], changed["last_note"]) == ("acknowledged", "on it")

            # Revoked: the next change of this patient no longer reaches alice; the patient
            # still sees it.
            assert (await w.revoke(w.pat, consent["consent_id"])).status_code == 200
            second = add_alert(database_url, w.pat, severity="warning")
            seen = []
            while not seen or seen[-1][0] != second:
                data = (await pat.next())["data"]
                seen.append((data["alert_id"], data["severity"], data["status"]))
            # Each poll sends the state as it is then: changes between two polls coalesce.
            assert seen[-2:] == [(raised, "urgent", "acknowledged"), (second, "warning", "open")]
            await alice.nothing_for(0.6)
            await bob.nothing_for(0.0)
            await other.nothing_for(0.0)
            assert any(c.startswith(": keepalive") for c in bob.comments)
    streamed = [row for row in audit_rows(database_url, w.pat) if row[2] == "stream alerts"]
    assert {row[0] for row in streamed} == {f"clinician:{w.alice}", f"patient:{w.pat}"}


async def test_stream_resumes_from_last_event_id_and_refuses_others(
    settings: IngestSettings, auth: AuthSettings, database_url: str
) -> None:
    async with (
        served(make_app(settings, auth, api=LIVE)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        w = await build_world(http, auth)
        me = w.as_patient(w.pat)
        first = add_alert(database_url, w.pat, severity="info")
        async with stream(http, {**me, "Last-Event-ID": "2000-01-01T00:00:00+00:00~0"}) as s:
            # Older than a week is clamped to a week: the alert raised a moment ago comes.
            event = await s.next()
            assert event["data"]["alert_id"] == first
            last_id = event["id"]
        second = add_alert(database_url, w.pat, severity="info")
        async with stream(http, {**me, "Last-Event-ID": last_id}) as s:
            ids = {(await s.next())["data"]["alert_id"]}
            while second not in ids:  # at least once: the overlap may repeat the first
                ids.add((await s.next())["data"]["alert_id"])
        for headers, status in (
            ({}, 401),
            (w.as_admin(), 403),
            ({**me, "Last-Event-ID": "yesterday"}, 422),
        ):
            response = await http.get("/alerts/stream", headers=headers)
            assert response.status_code == status
