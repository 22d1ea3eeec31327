"""Alerts as clinicians work them: the inbox, the lifecycle transitions (acknowledge, resolve,
snooze, with notes and their history), changes for the live stream, the patient-list status.

The ingest path raises and updates alerts (``store``); this module changes only the lifecycle
columns. Resolving frees the (patient, rule) slot, so the next finding raises a new alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ingest_server import db
from ingest_server.db import Connection
from ingest_server.profile.errors import InvalidTransition, NotFound
from ingest_server.profile.models import (
    SEVERITY_RANK_SQL,
    AlertAction,
    AlertEventRow,
    AlertSeverity,
    AlertStatus,
    LifecycleAlertRow,
)

RANK = SEVERITY_RANK_SQL.format(col="a.severity")

_ALERT = """a.alert_id, a.patient_id, p.display_name AS patient_name, a.rule_id, a.rule_version,
    a.severity, a.status, a.title, a.explanation, a.evidence, a.occurrences, a.first_seen_at,
    a.last_seen_at, a.updated_at, a.acknowledged_at, a.acknowledged_by, a.resolved_at,
    a.resolved_by, a.snoozed_until, a.snoozed_by, a.last_note"""
_FROM = "FROM alerts a JOIN patients p ON p.patient_id = a.patient_id"

GET_ALERT = f"SELECT {_ALERT} {_FROM} WHERE a.alert_id = %s"
LOCK_ALERT = "SELECT status FROM alerts WHERE alert_id = %s FOR UPDATE"

_UPDATES = {
    AlertAction.ACKNOWLEDGE: """
UPDATE alerts SET status = 'acknowledged', acknowledged_at = now(), acknowledged_by = %(actor)s,
    last_note = coalesce(%(note)s, last_note), updated_at = now()
WHERE alert_id = %(alert_id)s""",
    AlertAction.RESOLVE: """
UPDATE alerts SET status = 'resolved', resolved_at = now(), resolved_by = %(actor)s,
    snoozed_until = NULL, last_note = coalesce(%(note)s, last_note), updated_at = now()
WHERE alert_id = %(alert_id)s""",
    AlertAction.SNOOZE: """
UPDATE alerts SET snoozed_until = %(snoozed_until)s, snoozed_by = %(actor)s,
    last_note = coalesce(%(note)s, last_note), updated_at = now()
WHERE alert_id = %(alert_id)s""",
}
INSERT_EVENT = """
INSERT INTO alert_events (alert_id, action, from_status, to_status, snoozed_until, note, actor)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""
ALERT_EVENTS = """
SELECT event_id, alert_id, action, from_status, to_status, snoozed_until, note, actor, at
FROM alert_events WHERE alert_id = %s ORDER BY at, event_id
"""


def next_status(alert_id: int, status: str, action: AlertAction) -> AlertStatus:
    """The status after ``action``; ``InvalidTransition`` when the current one does not allow
    it. open -> acknowledged -> resolved; open -> resolved; snooze keeps the status (a resolved
    alert can do nothing, an acknowledged one cannot be acknowledged again)."""
    current = AlertStatus(status)
    if current is AlertStatus.RESOLVED:
        raise InvalidTransition(alert_id, status, action)
    if action is AlertAction.ACKNOWLEDGE:
        if current is not AlertStatus.OPEN:
            raise InvalidTransition(alert_id, status, action)
        return AlertStatus.ACKNOWLEDGED
    if action is AlertAction.RESOLVE:
        return AlertStatus.RESOLVED
    return current


async def get_alert(conn: Connection, alert_id: int) -> LifecycleAlertRow | None:
    return await db.fetch_one(conn, GET_ALERT, (alert_id,), LifecycleAlertRow)


async def alert_events(conn: Connection, alert_id: int) -> list[AlertEventRow]:
    return await db.fetch_all(conn, ALERT_EVENTS, (alert_id,), AlertEventRow)


async def transition(
    conn: Connection,
    alert_id: int,
    action: AlertAction,
    *,
    actor: str,
    note: str | None,
    snoozed_until: datetime | None = None,
) -> LifecycleAlertRow:
    """Apply ``action`` to the alert and record it in its history (one transaction; the row is
    locked so two clinicians cannot both acknowledge it)."""
    async with db.transaction(conn):
        locked = await db.fetch_tuples(conn, LOCK_ALERT, (alert_id,))
        if not locked:
            raise NotFound("alert", alert_id)
        ((status,),) = locked
        to_status = next_status(alert_id, status, action)
        params = {
            "alert_id": alert_id,
            "actor": actor,
            "note": note,
            "snoozed_until": snoozed_until,
        }
        await db.execute(conn, _UPDATES[action], params)
        await db.execute(
            conn,
            INSERT_EVENT,
            (alert_id, str(action), status, str(to_status), snoozed_until, note, actor),
        )
        row = await get_alert(conn, alert_id)
    assert row is not None
    return row


# --- the inbox ------------------------------------------------------------------------------------


class InboxSort(StrEnum):
    SEVERITY = "severity"
    LAST_SEEN_AT = "last_seen_at"
    FIRST_SEEN_AT = "first_seen_at"
    UPDATED_AT = "updated_at"


_SORT_SQL = {
    InboxSort.SEVERITY: RANK,
    InboxSort.LAST_SEEN_AT: "a.last_seen_at",
    InboxSort.FIRST_SEEN_AT: "a.first_seen_at",
    InboxSort.UPDATED_AT: "a.updated_at",
}


@dataclass(frozen=True, slots=True)
class InboxFilter:
    statuses: tuple[str, ...] = ("open", "acknowledged")
    min_severity: AlertSeverity | None = None
    patient_id: str | None = None
    since: datetime | None = None
    include_snoozed: bool = False
    sort: InboxSort = InboxSort.SEVERITY
    descending: bool = True
    limit: int = 50
    offset: int = 0


async def inbox(
    conn: Connection, visible: str, visible_params: dict[str, Any], f: InboxFilter
) -> list[LifecycleAlertRow]:
    """Alerts of the patients ``visible`` (an SQL condition on ``a.patient_id``) lets the caller
    see, filtered and sorted; ties broken by the newest last seen, then the id."""
    direction = "DESC" if f.descending else "ASC"
    query = f"""
SELECT {_ALERT} {_FROM}
WHERE {visible}
  AND a.status = ANY(%(statuses)s::text[])
  AND {RANK} >= %(min_rank)s
  AND (%(patient_id)s::text IS NULL OR a.patient_id = %(patient_id)s::text)
  AND (%(since)s::timestamptz IS NULL OR a.last_seen_at >= %(since)s::timestamptz)
  AND (%(include_snoozed)s OR a.snoozed_until IS NULL OR a.snoozed_until <= now())
ORDER BY {_SORT_SQL[f.sort]} {direction}, a.last_seen_at DESC, a.alert_id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""
    params = {
        **visible_params,
        "statuses": list(f.statuses),
        "min_rank": f.min_severity.rank if f.min_severity else 0,
        "patient_id": f.patient_id,
        "since": f.since,
        "include_snoozed": f.include_snoozed,
        "limit": f.limit,
        "offset": f.offset,
    }
    return await db.fetch_all(conn, query, params, LifecycleAlertRow)


async def changed_since(
    conn: Connection, visible: str, visible_params: dict[str, Any], since: datetime, limit: int
) -> list[LifecycleAlertRow]:
    """Alerts the caller may see that changed (raised, updated, acknowledged...) after
    ``since``, oldest change first."""
    query = f"""
SELECT {_ALERT} {_FROM}
WHERE {visible} AND a.updated_at > %(since)s
ORDER BY a.updated_at, a.alert_id
LIMIT %(limit)s
"""
    params = {**visible_params, "since": since, "limit": limit}
    return await db.fetch_all(conn, query, params, LifecycleAlertRow)


# --- the clinician's patient list -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatientStatusRow:
    patient_id: str
    display_name: str
    worst_open_severity: str | None
    open_alerts: int
    last_reading_at: datetime | None
    blood_pressure_7d: int
    glucose_7d: int


async def patient_statuses(
    conn: Connection, visible: str, visible_params: dict[str, Any], *, limit: int, offset: int
) -> list[PatientStatusRow]:
    """The patients ``visible`` (an SQL condition on ``p.patient_id``) lets the caller see, with
    their worst unresolved alert, last reading and readings of the last 7 days (control-solution
    tests are not readings of the patient); worst first."""
    rank = SEVERITY_RANK_SQL.format(col="worst.severity")
    query = f"""
SELECT p.patient_id, p.display_name,
       worst.severity AS worst_open_severity,
       (SELECT count(*) FROM alerts a WHERE a.patient_id = p.patient_id
          AND a.status <> 'resolved')::int AS open_alerts,
       greatest((SELECT max(measured_at) FROM bp_readings r WHERE r.patient_id = p.patient_id),
                (SELECT max(measured_at) FROM glucose_readings g
                 WHERE g.patient_id = p.patient_id AND NOT g.control_solution)) AS last_reading_at,
       (SELECT count(*) FROM bp_readings r WHERE r.patient_id = p.patient_id
          AND r.measured_at > now() - interval '7 days' AND r.measured_at <= now()
          AND r.systolic_mmhg IS NOT NULL)::int AS blood_pressure_7d,
       (SELECT count(*) FROM glucose_readings g WHERE g.patient_id = p.patient_id
          AND g.measured_at > now() - interval '7 days' AND g.measured_at <= now()
          AND NOT g.control_solution)::int AS glucose_7d
FROM patients p
LEFT JOIN LATERAL (
    SELECT a.severity FROM alerts a
    WHERE a.patient_id = p.patient_id AND a.status <> 'resolved'
    ORDER BY {RANK} DESC LIMIT 1
) worst ON true
WHERE {visible}
ORDER BY coalesce({rank}, -1) DESC, last_reading_at DESC NULLS LAST, p.patient_id
LIMIT %(limit)s OFFSET %(offset)s
"""
    params = {**visible_params, "limit": limit, "offset": offset}
    return await db.fetch_all(conn, query, params, PatientStatusRow)


PATIENT_ALERTS = f"""
SELECT {_ALERT} {_FROM} WHERE a.patient_id = %s ORDER BY a.last_seen_at DESC, a.alert_id DESC
LIMIT %s
"""


async def patient_alerts(conn: Connection, patient_id: str, limit: int) -> list[LifecycleAlertRow]:
    return await db.fetch_all(conn, PATIENT_ALERTS, (patient_id, limit), LifecycleAlertRow)
