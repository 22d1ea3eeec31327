"""The webhook dispatcher: announces alerts that reach an endpoint's severity, signs and sends
each delivery, retries with jittered exponential back-off, logs every attempt.

A background task of the API process (``run``); several processes can run one each (claims are
leased with ``SKIP LOCKED``). At-least-once: a receiver de-duplicates by the delivery id header.
Each attempt discloses the alert (with the patient id) to the receiver, so each is audited.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from datetime import timedelta

import httpx

from ingest_server import db
from ingest_server.errors import DatabaseError
from ingest_server.notify import webhooks
from ingest_server.notify.settings import WebhookSettings
from ingest_server.notify.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, sign
from ingest_server.profile import audit

log = logging.getLogger(__name__)

ACTOR = "system:webhook"


def backoff(attempt: int, settings: WebhookSettings, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    base = min(settings.retry_max_s, settings.retry_base_s * 2 ** (attempt - 1))
    return base * (rng or random).uniform(0.8, 1.2)


def body_of(payload: dict[str, object]) -> bytes:
    """The exact bytes that are signed and sent (stable key order, no spaces)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


class WebhookDispatcher:
    def __init__(
        self,
        pool: db.Pool,
        settings: WebhookSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._transport = transport

    async def run(self) -> None:
        """Poll until cancelled; a failing database or receiver is logged and retried."""
        s = self._settings
        async with httpx.AsyncClient(
            timeout=s.timeout_s, follow_redirects=False, transport=self._transport
        ) as http:
            while True:
                try:
                    await self.tick(http)
                except DatabaseError as exc:
                    log.warning("webhook dispatcher: database unavailable: %s", exc)
                except Exception:  # a long-running loop logs and goes on
                    log.exception("webhook dispatcher: tick failed")
                await asyncio.sleep(s.poll_interval_s)

    async def tick(self, http: httpx.AsyncClient) -> int:
        """Enqueue new announcements, attempt the due deliveries; how many were attempted."""
        s = self._settings
        async with db.connection(self._pool) as conn:
            queued = await webhooks.enqueue(conn, timedelta(seconds=s.lookback_s))
            if queued:
                log.info("webhook dispatcher: %d deliveries queued", queued)
            lease = timedelta(seconds=s.timeout_s + 10)
            claimed = await webhooks.claim(conn, lease=lease, batch=s.batch_size)
        if claimed:
            await asyncio.gather(*(self._attempt(http, d) for d in claimed))
        return len(claimed)

    async def _attempt(self, http: httpx.AsyncClient, delivery: webhooks.ClaimedDelivery) -> None:
        s = self._settings
        body = body_of(delivery.payload)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(delivery.secret, int(time.time()), body),
            DELIVERY_HEADER: str(delivery.delivery_id),
            EVENT_HEADER: delivery.event,
            "User-Agent": "homewatch-webhooks/1",
        }
        status_code: int | None = None
        error: str | None = None
        started = time.monotonic()
        if not delivery.active:
            error = "endpoint deactivated"
        else:
            try:
                response = await http.post(delivery.url, content=body, headers=headers)
                status_code = response.status_code
                if not response.is_success:
                    error = f"HTTP {status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
        duration_ms = int((time.monotonic() - started) * 1000)
        if error is None:
            outcome, retry_in = "delivered", None
        elif delivery.attempts >= s.max_attempts or not delivery.active:
            outcome, retry_in = "failed", None
        else:
            outcome = "retry"
            retry_in = timedelta(seconds=backoff(delivery.attempts, s))
        log_level = logging.INFO if outcome == "delivered" else logging.WARNING
        log.log(
            log_level,
            "webhook delivery %d (alert %d, %s) attempt %d to %s: %s",
            delivery.delivery_id,
            delivery.alert_id,
            delivery.event,
            delivery.attempts,
            delivery.url,
            error or f"HTTP {status_code}",
        )
        alert = delivery.payload.get("alert")
        patient_id = alert.get("patient_id") if isinstance(alert, dict) else None
        async with db.connection(self._pool) as conn:
            await webhooks.record_attempt(
                conn,
                delivery,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
                outcome=outcome,
                retry_in=retry_in,
            )
            if delivery.active:
                await audit.record(
                    conn,
                    audit.AuditEntry(
                        actor=ACTOR,
                        role="system",
                        action=f"send webhook {delivery.event}",
                        resource=delivery.url[:500],
                        purpose="treatment",
                        client_address=None,
                    ),
                    patient_id if isinstance(patient_id, str) else None,
                )
