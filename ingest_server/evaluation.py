"""Alert evaluation of a batch's new blood-pressure readings, as if its messages came one by one.

The rules are ``alerting``'s (pure); this module loads their input and persists their decisions.
The caller holds the lock of every patient involved (``batch_store``), taken after the readings
were inserted, so the history loaded here holds every reading committed before, including late
and out-of-order ones: the rules see each new reading among its neighbours in measurement time.

A batch carries many MQTT messages. Each message is evaluated in batch order, seeing the readings
of the messages before it but not those after it, so that an alert goes through the same states
(raised HIGH on a first crisis reading, escalated to URGENT by its confirmation) whether the two
messages arrive in one batch or in two.
"""

from __future__ import annotations

import logging
import struct
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import alerting
from homewatch import wire
from ingest_server import db
from ingest_server.db import Connection
from ingest_server.results import AlertChange

log = logging.getLogger(__name__)

_FLOAT4 = struct.Struct("<f")

# Each patient's readings in the window, but for those this transaction wrote (the caller has
# them in memory). One index range scan per patient: the LATERAL ... OFFSET 0 keeps the planner
# from turning it into a hash join over whole partitions, which it did for array parameters
# (50 ms instead of 2).
LOAD_WINDOWS = """
SELECT w.patient_id, b.reading_id::text, b.measured_at, b.systolic_mmhg, b.diastolic_mmhg,
       b.pulse_bpm, b.flags
FROM unnest(%b::text[], %b::timestamptz[], %b::timestamptz[]) AS w(patient_id, lo, hi)
CROSS JOIN LATERAL (
    SELECT reading_id, measured_at, systolic_mmhg, diastolic_mmhg, pulse_bpm, flags
    FROM bp_readings
    WHERE patient_id = w.patient_id AND measured_at BETWEEN w.lo AND w.hi
      AND xmin <> (SELECT (pg_current_xact_id()::text::bigint %% 4294967296)::text::xid)
    OFFSET 0
) AS b
"""

LOAD_OPEN_ALERT = """
SELECT alert_id, rule_id, rule_version, severity, title, explanation, evidence, occurrences,
       first_seen_at, last_seen_at
FROM alerts
WHERE patient_id = %s AND rule_id = %s AND status <> 'resolved'
FOR UPDATE
"""

INSERT_ALERT = """
INSERT INTO alerts (patient_id, rule_id, rule_version, severity, status, title, explanation,
                    evidence, occurrences, first_seen_at, last_seen_at)
VALUES (%s, %s, %s, %s, 'open', %s, %s, %s, %s, %s, %s)
RETURNING alert_id
"""

UPDATE_ALERT = """
UPDATE alerts SET rule_version = %s, severity = %s, title = %s, explanation = %s, evidence = %s,
                  occurrences = %s, first_seen_at = %s, last_seen_at = %s, updated_at = now()
WHERE alert_id = %s
"""


class NewReading(NamedTuple):
    """A blood-pressure reading the batch stored: which message brought it, whose it is."""

    message: int
    reading: wire.BloodPressureReading
    patient_id: str


@dataclass(frozen=True, slots=True)
class _OpenAlertRow:
    alert_id: int
    rule_id: str
    rule_version: int
    severity: str
    title: str
    explanation: str
    evidence: dict[str, Any]
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime


async def evaluate(conn: Connection, new: Sequence[NewReading]) -> dict[int, list[AlertChange]]:
    """Run the blood-pressure rules for ``new``; the alert changes per message index."""
    if not new:
        return {}
    by_patient: dict[str, list[NewReading]] = defaultdict(list)
    for n in new:
        by_patient[n.patient_id].append(n)
    history = await _load(conn, by_patient)

    # Per patient, the ids each message brought, in batch order.
    per_patient: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for n in new:
        per_patient[n.patient_id][n.message].add(str(n.reading.reading_id))
    evaluations: list[tuple[int, str, set[str], set[str]]] = []  # message, patient, now, later
    for patient_id, by_message in per_patient.items():
        later: set[str] = set()
        for message in sorted(by_message, reverse=True):
            evaluations.append((message, patient_id, by_message[message], set(later)))
            later |= by_message[message]
    changes: dict[int, list[AlertChange]] = defaultdict(list)
    for message, patient_id, now_ids, later in sorted(evaluations, key=lambda e: e[:2]):
        observations = history[patient_id]
        if later:  # readings of later messages in the batch: not seen yet by this one
            observations = [o for o in observations if o.reading_id not in later]
        decisions = alerting.evaluate_blood_pressure(observations, new_reading_ids=now_ids)
        for decision in decisions:
            changes[message].append(await _upsert_alert(conn, patient_id, decision))
    return changes


async def _load(
    conn: Connection, by_patient: dict[str, list[NewReading]]
) -> dict[str, list[alerting.BloodPressureObservation]]:
    """Each patient's readings around their new ones (the rules' lookback on both sides)."""
    lookback = alerting.blood_pressure_lookback()
    patients = sorted(by_patient)
    times = {p: [n.reading.measured_at for n in by_patient[p]] for p in patients}
    rows = await db.fetch_tuples(
        conn,
        LOAD_WINDOWS,
        (
            patients,
            [min(times[p]) - lookback for p in patients],
            [max(times[p]) + lookback for p in patients],
        ),
        binary=True,
    )
    # By id: a reading of this batch written in a subtransaction comes back from the query too.
    history: dict[str, dict[str, alerting.BloodPressureObservation]] = defaultdict(dict)
    for patient_id, reading_id, measured_at, systolic, diastolic, pulse, flags in rows:
        history[patient_id][reading_id] = alerting.BloodPressureObservation(
            reading_id=reading_id,
            measured_at=measured_at,
            systolic=systolic,
            diastolic=diastolic,
            pulse=pulse,
            flags=frozenset(flags),
        )
    for patient_id, news in by_patient.items():
        for n in news:
            history[patient_id][str(n.reading.reading_id)] = _observation(n.reading)
    return {
        p: sorted(observations.values(), key=lambda o: o.measured_at)
        for p, observations in history.items()
    }


def _observation(r: wire.BloodPressureReading) -> alerting.BloodPressureObservation:
    """A reading as the rules see it, with the values as stored (single precision)."""
    v = r.values
    return alerting.BloodPressureObservation(
        reading_id=str(r.reading_id),
        measured_at=r.measured_at,
        systolic=_real(v.systolic.value),
        diastolic=_real(v.diastolic.value),
        pulse=_real(v.pulse_rate.value) if v.pulse_rate else None,
        flags=frozenset(str(f) for f in r.flags),
    )


def _real(value: float | None) -> float | None:
    """``value`` as PostgreSQL ``real`` keeps it."""
    return None if value is None else _FLOAT4.unpack(_FLOAT4.pack(value))[0]


async def _upsert_alert(
    conn: Connection, patient_id: str, decision: alerting.AlertDecision
) -> AlertChange:
    row = await db.fetch_one(conn, LOAD_OPEN_ALERT, (patient_id, decision.rule_id), _OpenAlertRow)
    existing = None
    if row is not None:
        existing = alerting.OpenAlert(
            rule_id=row.rule_id,
            rule_version=row.rule_version,
            severity=alerting.Severity[row.severity.upper()],
            title=row.title,
            explanation=row.explanation,
            evidence=row.evidence,
            occurrences=row.occurrences,
            first_seen_at=row.first_seen_at,
            last_seen_at=row.last_seen_at,
        )
    merged = alerting.merge(existing, decision)
    severity = alerting.Severity(merged.severity).name.lower()
    values = (
        merged.rule_version,
        severity,
        merged.title,
        merged.explanation,
        db.Jsonb(merged.evidence),
        merged.occurrences,
        merged.first_seen_at,
        merged.last_seen_at,
    )
    if row is None:
        [(alert_id,)] = await db.fetch_tuples(
            conn, INSERT_ALERT, (patient_id, merged.rule_id, *values)
        )
    else:
        alert_id = row.alert_id
        await db.execute(conn, UPDATE_ALERT, (*values, alert_id))
    log.info(
        "alert %s %s for patient %s: %s (%s, %d occurrences)",
        alert_id,
        "raised" if row is None else "updated",
        patient_id,
        merged.rule_id,
        severity,
        merged.occurrences,
    )
    return AlertChange(
        alert_id=alert_id,
        patient_id=patient_id,
        rule_id=merged.rule_id,
        severity=severity,
        title=merged.title,
        occurrences=merged.occurrences,
        reading_ids=tuple(str(r) for r in merged.evidence.get("reading_ids", [])),
        raised=row is None,
    )
