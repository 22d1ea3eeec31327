"""Webhook endpoints, deliveries and the delivery log in PostgreSQL."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ingest_server import db
from ingest_server.db import Connection
from ingest_server.profile.errors import NotFound
from ingest_server.profile.models import SEVERITY_RANK_SQL

_ENDPOINT = "endpoint_id, url, min_severity, active, created_at, created_by"
INSERT_ENDPOINT = f"""
INSERT INTO webhook_endpoints (url, secret, min_severity, created_by) VALUES (%s, %s, %s, %s)
RETURNING {_ENDPOINT}
"""
LIST_ENDPOINTS = f"SELECT {_ENDPOINT} FROM webhook_endpoints ORDER BY endpoint_id"
DEACTIVATE_ENDPOINT = f"""
UPDATE webhook_endpoints SET active = false WHERE endpoint_id = %s RETURNING {_ENDPOINT}
"""

#: Announce each alert once per severity it reaches (an escalation is news), to every active
#: endpoint whose threshold it meets, when it changed after the endpoint was registered.
#: Resolved or acknowledged alerts are not announced.
ENQUEUE = f"""
INSERT INTO webhook_deliveries (endpoint_id, alert_id, event, payload)
SELECT e.endpoint_id, a.alert_id, 'alert.' || a.severity,
       jsonb_build_object(
           'event', 'alert.' || a.severity,
           'alert', jsonb_build_object(
               'alert_id', a.alert_id, 'patient_id', a.patient_id, 'rule_id', a.rule_id,
               'rule_version', a.rule_version, 'severity', a.severity, 'status', a.status,
               'title', a.title, 'occurrences', a.occurrences,
               'first_seen_at', a.first_seen_at, 'last_seen_at', a.last_seen_at))
FROM alerts a
JOIN webhook_endpoints e ON e.active
    AND {SEVERITY_RANK_SQL.format(col="a.severity")}
        >= {SEVERITY_RANK_SQL.format(col="e.min_severity")}
WHERE a.status = 'open'
  AND a.updated_at > now() - %(lookback)s::interval
  AND a.updated_at >= e.created_at
ON CONFLICT (endpoint_id, alert_id, event) DO NOTHING
"""

#: Take due deliveries for one attempt each: the lease (next_attempt_at moved past the
#: attempt's timeout) keeps another dispatcher from sending the same one meanwhile, without a
#: transaction held open across the HTTP request.
CLAIM = """
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, next_attempt_at = now() + %(lease)s::interval
FROM webhook_endpoints e
WHERE d.delivery_id IN (
        SELECT delivery_id FROM webhook_deliveries
        WHERE status = 'pending' AND next_attempt_at <= now()
        ORDER BY next_attempt_at, delivery_id
        LIMIT %(batch)s
        FOR UPDATE SKIP LOCKED)
  AND e.endpoint_id = d.endpoint_id
RETURNING d.delivery_id, d.endpoint_id, d.alert_id, d.event, d.payload, d.attempts, e.url,
          e.secret, e.active
"""
DELIVERED = """
UPDATE webhook_deliveries SET status = 'delivered', delivered_at = now() WHERE delivery_id = %s
"""
RETRY = """
UPDATE webhook_deliveries SET next_attempt_at = now() + %s::interval WHERE delivery_id = %s
"""
FAILED = "UPDATE webhook_deliveries SET status = 'failed' WHERE delivery_id = %s"
LOG_ATTEMPT = """
INSERT INTO webhook_attempts (delivery_id, attempt, status_code, error, duration_ms)
VALUES (%s, %s, %s, %s, %s)
"""

DELIVERIES = """
SELECT delivery_id, endpoint_id, alert_id, event, status, attempts, next_attempt_at, created_at,
       delivered_at
FROM webhook_deliveries
WHERE (%(endpoint_id)s::bigint IS NULL OR endpoint_id = %(endpoint_id)s::bigint)
  AND (%(alert_id)s::bigint IS NULL OR alert_id = %(alert_id)s::bigint)
ORDER BY delivery_id DESC LIMIT %(limit)s
"""
ATTEMPTS = """
SELECT attempt_id, delivery_id, attempt, at, status_code, error, duration_ms
FROM webhook_attempts WHERE delivery_id = ANY(%s) ORDER BY delivery_id, attempt
"""


@dataclass(frozen=True, slots=True)
class EndpointRow:
    endpoint_id: int
    url: str
    min_severity: str
    active: bool
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    delivery_id: int
    endpoint_id: int
    alert_id: int
    event: str
    payload: dict[str, Any]
    attempts: int
    url: str
    secret: str
    active: bool


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    delivery_id: int
    endpoint_id: int
    alert_id: int
    event: str
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class AttemptRow:
    attempt_id: int
    delivery_id: int
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


async def create_endpoint(
    conn: Connection, *, url: str, min_severity: str, actor: str
) -> tuple[EndpointRow, str]:
    """A new endpoint and its signing secret (shown once: only the receiver keeps it)."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    row = await db.fetch_one(conn, INSERT_ENDPOINT, (url, secret, min_severity, actor), EndpointRow)
    assert row is not None
    return row, secret


async def list_endpoints(conn: Connection) -> list[EndpointRow]:
    return await db.fetch_all(conn, LIST_ENDPOINTS, None, EndpointRow)


async def deactivate_endpoint(conn: Connection, endpoint_id: int) -> EndpointRow:
    row = await db.fetch_one(conn, DEACTIVATE_ENDPOINT, (endpoint_id,), EndpointRow)
    if row is None:
        raise NotFound("webhook endpoint", endpoint_id)
    return row


async def enqueue(conn: Connection, lookback: timedelta) -> int:
    return await db.execute(conn, ENQUEUE, {"lookback": lookback})


async def claim(conn: Connection, *, lease: timedelta, batch: int) -> list[ClaimedDelivery]:
    return await db.fetch_all(conn, CLAIM, {"lease": lease, "batch": batch}, ClaimedDelivery)


async def record_attempt(
    conn: Connection,
    delivery: ClaimedDelivery,
    *,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    outcome: str,
    retry_in: timedelta | None,
) -> None:
    """Log the attempt and move the delivery on: ``outcome`` delivered, retry or failed."""
    async with db.transaction(conn):
        await db.execute(
            conn,
            LOG_ATTEMPT,
            (delivery.delivery_id, delivery.attempts, status_code, error, duration_ms),
        )
        if outcome == "delivered":
            await db.execute(conn, DELIVERED, (delivery.delivery_id,))
        elif outcome == "retry":
            await db.execute(conn, RETRY, (retry_in, delivery.delivery_id))
        else:
            await db.execute(conn, FAILED, (delivery.delivery_id,))


async def deliveries(
    conn: Connection, *, endpoint_id: int | None, alert_id: int | None, limit: int
) -> list[DeliveryRow]:
    params = {"endpoint_id": endpoint_id, "alert_id": alert_id, "limit": limit}
    return await db.fetch_all(conn, DELIVERIES, params, DeliveryRow)


async def attempts(conn: Connection, delivery_ids: list[int]) -> list[AttemptRow]:
    return await db.fetch_all(conn, ATTEMPTS, (delivery_ids,), AttemptRow)
