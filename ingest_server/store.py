"""Storage: the ingest path's entry points, patients and bindings, queries for the API.

The write path itself is ``batch_store`` (a batch of messages in one transaction, bulk writes,
exactly once per reading) with ``staging`` and ``evaluation``; ``store_message`` is its
one-message form. Rules are not here: ``alerting`` decides, ``evaluation`` persists.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from homewatch import wire
from ingest_server import batch_store, db
from ingest_server.db import Connection
from ingest_server.errors import BindingConflict, UnknownPatient
from ingest_server.results import AlertChange, StoreResult

__all__ = ["AlertChange", "StoreResult"]

log = logging.getLogger(__name__)

#: Same, per device while changing its bindings ("HWDB").
DEVICE_LOCK_NAMESPACE = 0x48574442

# --- SQL -----------------------------------------------------------------------------------------

INSERT_PATIENT = """
INSERT INTO patients (patient_id, display_name) VALUES (%s, %s)
ON CONFLICT (patient_id) DO UPDATE SET display_name = EXCLUDED.display_name
RETURNING patient_id, display_name, created_at
"""

GET_PATIENT = "SELECT patient_id, display_name, created_at FROM patients WHERE patient_id = %s"

REGISTER_DEVICE = "INSERT INTO devices (device_key) VALUES (%s) ON CONFLICT (device_key) DO NOTHING"

LOCK_DEVICE = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"

DEVICE_BINDINGS = """
SELECT binding_id, device_key, patient_id, valid_from, valid_to
FROM device_bindings WHERE device_key = %s ORDER BY valid_from
"""

CLOSE_BINDING = "UPDATE device_bindings SET valid_to = %s WHERE binding_id = %s"

INSERT_BINDING = """
INSERT INTO device_bindings (device_key, patient_id, valid_from) VALUES (%s, %s, %s)
RETURNING binding_id, device_key, patient_id, valid_from, valid_to
"""

LIST_READINGS = """
SELECT reading_id, measured_at, device_time, received_at, time_source, clock_status,
       clock_offset_s, systolic_mmhg, diastolic_mmhg, mean_arterial_mmhg, pulse_bpm, flags,
       device_key
FROM bp_readings
WHERE patient_id = %(patient_id)s
  AND (%(since)s::timestamptz IS NULL OR measured_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR measured_at < %(until)s::timestamptz)
ORDER BY measured_at DESC, reading_id
LIMIT %(limit)s
"""

LIST_GLUCOSE_READINGS = """
SELECT reading_id, measured_at, device_time, received_at, time_source, clock_status,
       clock_offset_s, sequence_number, mmol_per_l, mg_per_dl, reported_unit, sample_type,
       sample_location, sensor_status, context, control_solution, device_key
FROM glucose_readings
WHERE patient_id = %(patient_id)s
  AND (%(since)s::timestamptz IS NULL OR measured_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR measured_at < %(until)s::timestamptz)
ORDER BY measured_at DESC, reading_id
LIMIT %(limit)s
"""

LIST_ALERTS = """
SELECT alert_id, patient_id, rule_id, rule_version, severity, status, title, explanation, evidence,
       occurrences, first_seen_at, last_seen_at, created_at, updated_at
FROM alerts
WHERE patient_id = %(patient_id)s AND (%(status)s::text IS NULL OR status = %(status)s::text)
ORDER BY last_seen_at DESC, alert_id DESC
"""

LOG_ACCESS = """
INSERT INTO access_log (actor, action, patient_id, purpose, client_address)
VALUES (%s, %s, %s, %s, %s)
"""

# --- rows and results ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Patient:
    patient_id: str
    display_name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeviceBinding:
    binding_id: int
    device_key: str
    patient_id: str
    valid_from: datetime
    valid_to: datetime | None


@dataclass(frozen=True, slots=True)
class ReadingRow:
    """A stored blood-pressure reading."""

    reading_id: uuid.UUID
    measured_at: datetime
    device_time: datetime | None
    received_at: datetime
    time_source: str
    clock_status: str
    clock_offset_s: float | None
    systolic_mmhg: float | None
    diastolic_mmhg: float | None
    mean_arterial_mmhg: float | None
    pulse_bpm: float | None
    flags: list[str]
    device_key: str


@dataclass(frozen=True, slots=True)
class GlucoseReadingRow:
    """A stored glucose reading (``context`` as the wire's ``GlucoseContext`` dumped to JSON)."""

    reading_id: uuid.UUID
    measured_at: datetime
    device_time: datetime | None
    received_at: datetime
    time_source: str
    clock_status: str
    clock_offset_s: float | None
    sequence_number: int
    mmol_per_l: float | None
    mg_per_dl: float | None
    reported_unit: str
    sample_type: str | None
    sample_location: str | None
    sensor_status: list[str]
    context: dict[str, Any] | None
    control_solution: bool
    device_key: str


@dataclass(frozen=True, slots=True)
class AlertRow:
    alert_id: int
    patient_id: str
    rule_id: str
    rule_version: int
    severity: str
    status: str
    title: str
    explanation: str
    evidence: dict[str, Any]
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    created_at: datetime
    updated_at: datetime


# --- the ingest path -----------------------------------------------------------------------------


async def store_message(conn: Connection, message: wire.ReadingsMessage, topic: str) -> StoreResult:
    """Store ``message`` in one transaction; committed when this returns.

    Readings already stored (a redelivery, or the same reading sent again with another clock
    correction) are counted as duplicates and trigger nothing; readings with impossible values
    (``validate.impossible_value``), older than the retention, or of a device bound to no patient
    at their ``measured_at`` are quarantined one by one, the rest of the message is stored. Only
    new blood-pressure readings are evaluated by the rules. (``batch_store.store_batch`` stores
    many messages in one transaction.)
    """
    item = batch_store.Incoming(topic=topic, payload=b"", message=message)
    [result] = await batch_store.store_batch(conn, [item])
    return result


async def quarantine(
    conn: Connection,
    *,
    topic: str,
    payload: bytes,
    reason: str,
    detail: str | None = None,
    reading_id: uuid.UUID | None = None,
) -> None:
    """Set a message (or, with ``reading_id``, one reading) aside, byte-exact, with the reason."""
    await batch_store.insert_quarantine(conn, [(topic, payload, str(reason), detail, reading_id)])


# --- patients and bindings (demo, tests, later the profile API) -----------------------------------


async def create_patient(conn: Connection, patient_id: str, display_name: str) -> Patient:
    """Create the patient, or rename an existing one (idempotent)."""
    async with db.transaction(conn):
        row = await db.fetch_one(conn, INSERT_PATIENT, (patient_id, display_name), Patient)
    assert row is not None
    return row


async def get_patient(conn: Connection, patient_id: str) -> Patient | None:
    return await db.fetch_one(conn, GET_PATIENT, (patient_id,), Patient)


async def bind_device(
    conn: Connection, device_key: str, patient_id: str, valid_from: datetime | None = None
) -> DeviceBinding:
    """Bind the device (``wire.DeviceIdentity.device_key``) to the patient from ``valid_from``
    (default now) on; the device's current binding, if any, ends there. Binding a device to the
    patient it is already bound to returns the current binding. A binding may not start inside
    or before a closed period of the device's history (``BindingConflict``).
    """
    valid_from = valid_from or datetime.now(UTC)
    async with db.transaction(conn):
        if await get_patient(conn, patient_id) is None:
            raise UnknownPatient(patient_id)
        await db.execute(conn, REGISTER_DEVICE, (device_key,))
        await db.execute(conn, LOCK_DEVICE, (DEVICE_LOCK_NAMESPACE, device_key))
        history = await db.fetch_all(conn, DEVICE_BINDINGS, (device_key,), DeviceBinding)
        current = next((b for b in history if b.valid_to is None), None)
        if current is not None and current.patient_id == patient_id:
            return current
        if current is not None:
            if current.valid_from >= valid_from:
                raise BindingConflict(
                    device_key, f"bound to {current.patient_id!r} since {current.valid_from}"
                )
            await db.execute(conn, CLOSE_BINDING, (valid_from, current.binding_id))
        for b in history:
            if b.valid_to is not None and b.valid_to > valid_from:
                raise BindingConflict(
                    device_key,
                    f"bound to {b.patient_id!r} from {b.valid_from} to {b.valid_to}",
                )
        row = await db.fetch_one(
            conn, INSERT_BINDING, (device_key, patient_id, valid_from), DeviceBinding
        )
    assert row is not None
    log.info("device %s bound to patient %s from %s", device_key, patient_id, valid_from)
    return row


async def device_bindings(conn: Connection, device_key: str) -> list[DeviceBinding]:
    return await db.fetch_all(conn, DEVICE_BINDINGS, (device_key,), DeviceBinding)


# --- API queries ---------------------------------------------------------------------------------


async def list_readings(
    conn: Connection,
    patient_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[ReadingRow]:
    """The patient's readings with ``since <= measured_at < until``, newest first."""
    params = {"patient_id": patient_id, "since": since, "until": until, "limit": limit}
    return await db.fetch_all(conn, LIST_READINGS, params, ReadingRow)


async def list_glucose_readings(
    conn: Connection,
    patient_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[GlucoseReadingRow]:
    """The patient's glucose readings with ``since <= measured_at < until``, newest first
    (control-solution records included, flagged: the caller decides whether to show them)."""
    params = {"patient_id": patient_id, "since": since, "until": until, "limit": limit}
    return await db.fetch_all(conn, LIST_GLUCOSE_READINGS, params, GlucoseReadingRow)


async def list_alerts(
    conn: Connection, patient_id: str, *, status: str | None = None
) -> list[AlertRow]:
    params = {"patient_id": patient_id, "status": status}
    return await db.fetch_all(conn, LIST_ALERTS, params, AlertRow)


async def log_access(
    conn: Connection,
    *,
    actor: str,
    action: str,
    patient_id: str | None,
    purpose: str | None = None,
    client_address: str | None = None,
) -> None:
    """Append one row to the audit trail of reads of personal health data."""
    await db.execute(conn, LOG_ACCESS, (actor, action, patient_id, purpose, client_address))
