"""A property-based fuzz run (schemathesis) against the OpenAPI document: for every operation,
requests generated from its schema, sent over HTTP to the app on a real port as an admin, a
clinician or a patient, must never get a server error (5xx).

Bounded: ``EXAMPLES`` requests per operation (about a minute in all). The live stream is left
out (an endless response by design; ``test_live.py`` covers it)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from ingest_server.api.settings import ApiSettings
from ingest_server.auth import AuthSettings, Role
from ingest_server.settings import IngestSettings
from tests.integration.api.api_support import (
    add_alert,
    add_bp_reading,
    bearer,
    build_world,
    make_app,
    minutes_ago,
    served,
)

EXAMPLES = 15
SKIPPED = {("GET", "/alerts/stream")}


@contextlib.contextmanager
def server_thread(app: Any) -> Iterator[str]:
    """``served(app)`` on an event loop of its own in a thread (schemathesis calls are
    synchronous)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        box["stop"] = asyncio.Event()
        async with served(app) as url:
            box["url"] = url
            ready.set()
            await box["stop"].wait()

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # surfaced below, in the test's thread
            box["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="fuzz-server", daemon=True)
    thread.start()
    ready.wait(30)
    if "url" not in box:
        raise AssertionError(f"the server did not start: {box.get('error')!r}")
    try:
        yield box["url"]
    finally:
        loop.call_soon_threadsafe(box["stop"].set)
        thread.join(30)
        loop.close()


def test_no_operation_answers_with_a_server_error(
    settings: IngestSettings, auth: AuthSettings, database_url: str
) -> None:
    app = make_app(settings, auth, api=ApiSettings(live_max_duration_s=1))
    with server_thread(app) as url:

        async def seed() -> dict[str, str]:
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                w = await build_world(http, auth)
                await w.grant(w.pat, "organisation", w.org_a)
                reading = add_bp_reading(database_url, w.pat, minutes_ago(5), 150, 95)
                add_alert(database_url, w.pat, severity="urgent", reading_ids=[reading])
                return {"pat": w.pat, "alice": w.alice}

        ids = asyncio.run(seed())
        tokens = {
            "admin": bearer(auth, Role.ADMIN, "fuzz-admin"),
            "clinician": bearer(auth, Role.CLINICIAN, ids["alice"]),
            "patient": bearer(auth, Role.PATIENT, ids["pat"]),
            "gateway": bearer(auth, Role.GATEWAY, "gw-api"),
        }
        schema = schemathesis.openapi.from_dict(app.openapi())
        operations = [result.ok() for result in schema.get_all_operations()]
        tested = 0
        for operation in operations:
            if (operation.method.upper(), operation.path) in SKIPPED:
                continue
            strategies = [operation.as_strategy()]
            if "{patient_id}" in operation.path:  # also reach past the access check
                strategies.append(operation.as_strategy(path_parameters={"patient_id": ids["pat"]}))
            _fuzz(
                st.one_of(strategies), url, tokens, f"{operation.method.upper()} {operation.path}"
            )
            tested += 1
        assert tested >= 45  # the document lists every operation


def _fuzz(strategy: Any, url: str, tokens: dict[str, dict[str, str]], label: str) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(case=strategy, role=st.sampled_from(sorted(tokens)))
    def run(case: Any, role: str) -> None:
        response = case.call(base_url=url, headers=tokens[role], timeout=15)
        if response.status_code >= 500:
            pytest.fail(f"{label} as {role}: {response.status_code} {response.text[:300]}")
        case.validate_response(response, checks=[not_a_server_error])

    run()
