"""Idempotent storage of readings messages, alert upkeep, patients and bindings, API queries.

``store_message`` is the ingest path: one transaction per message, readings of every kind
(blood pressure, glucose) each in its table. Rules are not here: the blood-pressure rules of
``alerting`` decide, this module loads their input and persists their decisions. Lock order
inside the transaction (so concurrent workers cannot deadlock): gateway row, device rows
(sorted), patient advisory locks (sorted), alert rows.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

import alerting
from homewatch import wire
from ingest_server import db
from ingest_server.db import Connection
from ingest_server.errors import BindingConflict, UnknownPatient
from ingest_server.validate import QuarantineReason, impossible_value

log = logging.getLogger(__name__)

#: First key of the two-key pg_advisory_xact_lock taken per patient while evaluating ("HWAP").
PATIENT_LOCK_NAMESPACE = 0x48574150
#: Same, per device while changing its bindings ("HWDB").
DEVICE_LOCK_NAMESPACE = 0x48574442
#: Longest ``StoreResult.quarantine_detail`` (a backlog can set many readings aside).
_MAX_DETAIL = 2000

# --- SQL -----------------------------------------------------------------------------------------

UPSERT_GATEWAY = """
INSERT INTO gateways (gateway_id, first_seen_at, last_seen_at) VALUES (%s, now(), now())
ON CONFLICT (gateway_id) DO UPDATE SET last_seen_at = now()
"""

UPSERT_DEVICE = """
INSERT INTO devices AS d (device_key, manufacturer, model, serial_number, address,
                          firmware_revision, first_seen_at, last_seen_at)
VALUES (%s, %s, %s, %s, %s, %s, now(), now())
ON CONFLICT (device_key) DO UPDATE SET
    manufacturer = coalesce(EXCLUDED.manufacturer, d.manufacturer),
    model = coalesce(EXCLUDED.model, d.model),
    serial_number = coalesce(EXCLUDED.serial_number, d.serial_number),
    address = EXCLUDED.address,
    firmware_revision = coalesce(EXCLUDED.firmware_revision, d.firmware_revision),
    first_seen_at = coalesce(d.first_seen_at, EXCLUDED.first_seen_at),
    last_seen_at = now()
"""

# The patient each (device, measured_at) belonged to; NULL when the device was not bound then.
RESOLVE_PATIENTS = """
SELECT r.ord, b.patient_id
FROM unnest(%s::text[], %s::timestamptz[]) WITH ORDINALITY AS r(device_key, measured_at, ord)
LEFT JOIN LATERAL (
    SELECT patient_id FROM device_bindings
    WHERE device_key = r.device_key
      AND valid_from <= r.measured_at AND (valid_to IS NULL OR r.measured_at < valid_to)
    ORDER BY valid_from DESC
    LIMIT 1
) b ON true
ORDER BY r.ord
"""

INSERT_READING = """
INSERT INTO bp_readings (reading_id, patient_id, device_key, gateway_id, measured_at, device_time,
                         received_at, time_source, clock_status, clock_offset_s, systolic_mmhg,
                         diastolic_mmhg, mean_arterial_mmhg, pulse_bpm, reported_unit, user_id,
                         flags, raw)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (reading_id, measured_at) DO NOTHING
RETURNING reading_id, measured_at
"""

INSERT_GLUCOSE_READING = """
INSERT INTO glucose_readings (reading_id, patient_id, device_key, gateway_id, measured_at,
                              device_time, received_at, time_source, clock_status, clock_offset_s,
                              sequence_number, mmol_per_l, mg_per_dl, reported_unit, sample_type,
                              sample_location, sensor_status, context, control_solution, raw,
                              raw_context)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (reading_id, measured_at) DO NOTHING
RETURNING reading_id, measured_at
"""

INSERT_QUARANTINE = """
INSERT INTO quarantine (topic, payload, reason, detail, reading_id) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (reading_id) WHERE reading_id IS NOT NULL DO NOTHING
"""

LOCK_PATIENT = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"

LOAD_OBSERVATIONS = """
SELECT reading_id::text, measured_at, systolic_mmhg, diastolic_mmhg, pulse_bpm, flags
FROM bp_readings
WHERE patient_id = %s AND measured_at BETWEEN %s AND %s
ORDER BY measured_at
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


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert raised (``raised``) or updated by a stored message."""

    alert_id: int
    patient_id: str
    rule_id: str
    severity: str
    title: str
    occurrences: int
    reading_ids: tuple[str, ...]
    raised: bool


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What one MQTT message did to the database (for logs, metrics and the demo).

    ``stored`` and ``duplicates`` count readings of every kind; ``stored_glucose`` and
    ``duplicates_glucose`` say how many of them were glucose readings (the rest: blood pressure).
    """

    topic: str
    gateway_id: str | None
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    #: Why readings (or the whole message) were quarantined; None when nothing was. Readings set
    #: aside for different reasons in one message: the distinct reasons, sorted, "; "-joined.
    quarantine_reason: str | None = None
    quarantine_detail: str | None = None
    stored_reading_ids: tuple[str, ...] = ()
    alerts: tuple[AlertChange, ...] = field(default=())
    stored_glucose: int = 0
    duplicates_glucose: int = 0

    @property
    def alerts_raised(self) -> int:
        return sum(1 for a in self.alerts if a.raised)

    @property
    def alerts_updated(self) -> int:
        return sum(1 for a in self.alerts if not a.raised)


# --- the ingest path -----------------------------------------------------------------------------


async def store_message(conn: Connection, message: wire.ReadingsMessage, topic: str) -> StoreResult:
    """Store ``message`` in one transaction; committed when this returns.

    Readings already stored (a redelivery) are counted as duplicates and trigger nothing; readings
    with impossible values (``validate.impossible_value``) and readings of a device bound to no
    patient at their ``measured_at`` are quarantined one by one, the rest of the message is stored.
    Only new blood-pressure readings are evaluated by the rules.
    """
    async with db.transaction(conn):
        return await _store(conn, message, topic)


async def _store(conn: Connection, message: wire.ReadingsMessage, topic: str) -> StoreResult:
    await db.execute(conn, UPSERT_GATEWAY, (message.gateway_id,))
    devices = {r.device.device_key: r.device for r in message.readings}
    for key in sorted(devices):
        d = devices[key]
        await db.execute(
            conn,
            UPSERT_DEVICE,
            (key, d.manufacturer, d.model, d.serial_number, d.address, d.firmware_revision),
        )

    bound, set_aside = await _sort_out(conn, message.readings)
    for reading, reason, detail in set_aside:
        await quarantine(
            conn,
            topic=topic,
            payload=message.model_copy(update={"readings": [reading]}).to_bytes(),
            reason=reason,
            detail=detail,
            reading_id=reading.reading_id,
        )
    reasons = "; ".join(sorted({str(reason) for _, reason, _ in set_aside})) or None
    details = "; ".join(detail for *_, detail in set_aside)[:_MAX_DETAIL] or None
    if set_aside:
        log.warning(
            "set aside %d of %d readings from %s on %s: %s",
            len(set_aside),
            len(message.readings),
            message.gateway_id,
            topic,
            details,
        )

    new = await _insert(conn, message.gateway_id, bound)

    new_by_patient: dict[str, list[wire.BloodPressureReading]] = defaultdict(list)
    for reading, patient in new:
        if _evaluated(reading):
            new_by_patient[patient].append(reading)
    changes: list[AlertChange] = []
    for patient_id in sorted(new_by_patient):
        changes += await _evaluate(conn, patient_id, new_by_patient[patient_id])

    glucose_bound = sum(1 for r, _ in bound if isinstance(r, wire.GlucoseReading))
    glucose_new = sum(1 for r, _ in new if isinstance(r, wire.GlucoseReading))
    return StoreResult(
        topic=topic,
        gateway_id=message.gateway_id,
        stored=len(new),
        duplicates=len(bound) - len(new),
        quarantined=len(set_aside),
        quarantine_reason=reasons,
        quarantine_detail=details,
        stored_reading_ids=tuple(str(r.reading_id) for r, _ in new),
        alerts=tuple(changes),
        stored_glucose=glucose_new,
        duplicates_glucose=glucose_bound - glucose_new,
    )


async def _sort_out(
    conn: Connection, readings: list[wire.Reading]
) -> tuple[list[tuple[wire.Reading, str]], list[tuple[wire.Reading, QuarantineReason, str]]]:
    """Split ``readings`` into (reading, patient) pairs to store and (reading, reason, detail)
    triples to quarantine, each list in message order."""
    # Impossible first: such a reading never becomes storable, whereas an unbound one is kept to
    # be ingested again once its device is bound (one quarantine row per reading, so the first
    # reason given is the one that stays).
    set_aside: list[tuple[wire.Reading, QuarantineReason, str]] = []
    candidates: list[wire.Reading] = []
    for reading in readings:
        problem = impossible_value(reading)
        if problem is None:
            candidates.append(reading)
        else:
            set_aside.append((reading, QuarantineReason.IMPOSSIBLE_VALUE, problem))

    bound: list[tuple[wire.Reading, str]] = []
    for reading, patient in zip(candidates, await _resolve(conn, candidates), strict=True):
        if patient is not None:
            bound.append((reading, patient))
        else:
            detail = (
                f"device {reading.device.device_key!r} bound to no patient at "
                f"{reading.measured_at.isoformat()}"
            )
            set_aside.append((reading, QuarantineReason.UNBOUND_DEVICE, detail))
    return bound, set_aside


async def _resolve(conn: Connection, readings: list[wire.Reading]) -> list[str | None]:
    """The patient each reading's device was bound to at its ``measured_at`` (None: nobody)."""
    if not readings:
        return []
    resolved = await db.fetch_tuples(
        conn,
        RESOLVE_PATIENTS,
        ([r.device.device_key for r in readings], [r.measured_at for r in readings]),
    )
    return [patient for _, patient in resolved]


async def _insert(
    conn: Connection, gateway_id: str, bound: list[tuple[wire.Reading, str]]
) -> list[tuple[wire.Reading, str]]:
    """Insert ``bound`` (reading, patient) pairs, each kind in its table; those that were new,
    in message order. Already stored ones (a redelivery) are left as they are."""
    by_kind: dict[str, list[tuple[wire.Reading, str]]] = defaultdict(list)
    for reading, patient in bound:
        by_kind[reading.kind].append((reading, patient))
    inserted: set[tuple[str, uuid.UUID, datetime]] = set()
    for kind, pairs in by_kind.items():
        # A KeyError here: a kind added to the wire contract without a table (a defect, and the
        # consumer quarantines the message as "processing failed" instead of losing it).
        statement, params = _INSERTS[kind]
        rows = [params(gateway_id, r, p) for r, p in pairs]
        returned = await db.execute_many_returning(conn, statement, rows)
        inserted.update((kind, reading_id, measured_at) for reading_id, measured_at in returned)
    # Match on the whole key: a reading twice in one message is new once.
    new: list[tuple[wire.Reading, str]] = []
    for reading, patient in bound:
        key = (reading.kind, reading.reading_id, reading.measured_at)
        if key in inserted:
            inserted.discard(key)
            new.append((reading, patient))
    return new


def _evaluated(reading: wire.Reading) -> TypeGuard[wire.BloodPressureReading]:
    """Whether the rules look at a newly stored reading: blood pressure only, for now.

    Glucose rules are a later issue. When they come, a control-solution record
    (``GlucoseReading.control_solution``) must stay out of them: it tests the meter with a
    liquid of known concentration, it says nothing about the patient.
    """
    return isinstance(reading, wire.BloodPressureReading)


def _clock_params(r: wire.BloodPressureReading | wire.GlucoseReading) -> tuple[Any, ...]:
    return (str(r.time_source), str(r.device_clock.status), r.device_clock.offset_seconds)


def _reading_params(
    gateway_id: str, r: wire.BloodPressureReading, patient_id: str
) -> tuple[Any, ...]:
    v = r.values
    return (
        r.reading_id,
        patient_id,
        r.device.device_key,
        gateway_id,
        r.measured_at,
        r.device_time,
        r.received_at,
        *_clock_params(r),
        v.systolic.value,
        v.diastolic.value,
        v.mean_arterial_pressure.value,
        v.pulse_rate.value if v.pulse_rate else None,
        v.reported_unit,
        v.user_id,
        [str(f) for f in r.flags],
        bytes.fromhex(r.raw),
    )


def _glucose_params(gateway_id: str, r: wire.GlucoseReading, patient_id: str) -> tuple[Any, ...]:
    v = r.values
    return (
        r.reading_id,
        patient_id,
        r.device.device_key,
        gateway_id,
        r.measured_at,
        r.device_time,
        r.received_at,
        *_clock_params(r),
        r.sequence_number,
        v.mmol_per_l.value,
        v.mg_per_dl.value,
        v.reported_unit,
        v.sample_type,
        v.sample_location,
        list(v.sensor_status),
        None if r.context is None else db.Jsonb(r.context.model_dump(mode="json")),
        r.control_solution,
        bytes.fromhex(r.raw),
        None if r.raw_context is None else bytes.fromhex(r.raw_context),
    )


#: Per reading kind (``wire.Reading.kind``): its insert and the parameters of one reading.
_INSERTS: dict[str, tuple[str, Callable[[str, Any, str], tuple[Any, ...]]]] = {
    "blood_pressure": (INSERT_READING, _reading_params),
    "glucose": (INSERT_GLUCOSE_READING, _glucose_params),
}


async def _evaluate(
    conn: Connection, patient_id: str, new: list[wire.BloodPressureReading]
) -> list[AlertChange]:
    """Run the blood-pressure rules over the patient's readings around the new ones."""
    new_times = [r.measured_at for r in new]
    # Workers run concurrently: serialise evaluation per patient. Taken after our inserts, so
    # the window loaded below sees every reading committed by the worker that held it before.
    await db.execute(conn, LOCK_PATIENT, (PATIENT_LOCK_NAMESPACE, patient_id))
    lookback = alerting.blood_pressure_lookback()
    rows = await db.fetch_tuples(
        conn, LOAD_OBSERVATIONS, (patient_id, min(new_times) - lookback, max(new_times) + lookback)
    )
    observations = [
        alerting.BloodPressureObservation(
            reading_id=reading_id,
            measured_at=measured_at,
            systolic=systolic,
            diastolic=diastolic,
            pulse=pulse,
            flags=frozenset(flags),
        )
        for reading_id, measured_at, systolic, diastolic, pulse, flags in rows
    ]
    changes = []
    new_ids = {str(r.reading_id) for r in new}
    for decision in alerting.evaluate_blood_pressure(observations, new_reading_ids=new_ids):
        changes.append(await _upsert_alert(conn, patient_id, decision))
    return changes


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
    evidence = db.Jsonb(merged.evidence)
    if row is None:
        (alert_id,) = (
            await db.fetch_tuples(
                conn,
                INSERT_ALERT,
                (
                    patient_id,
                    merged.rule_id,
                    merged.rule_version,
                    severity,
                    merged.title,
                    merged.explanation,
                    evidence,
                    merged.occurrences,
                    merged.first_seen_at,
                    merged.last_seen_at,
                ),
            )
        )[0]
    else:
        alert_id = row.alert_id
        await db.execute(
            conn,
            UPDATE_ALERT,
            (
                merged.rule_version,
                severity,
                merged.title,
                merged.explanation,
                evidence,
                merged.occurrences,
                merged.first_seen_at,
                merged.last_seen_at,
                alert_id,
            ),
        )
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
    await db.execute(conn, INSERT_QUARANTINE, (topic, payload, str(reason), detail, reading_id))


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
