"""The write path: a batch of MQTT messages stored in one transaction, exactly once per reading.

``store_batch`` takes messages as the consumer received them (parsed, or invalid with the reason)
and, in one transaction: quarantines invalid messages; records gateways and devices; sorts every
reading out — already stored (by id alone: a duplicate), impossible, older than the retention,
bound to no patient at its ``measured_at`` (each of those three quarantined on its own, as a
one-reading message that can be ingested again) or to be stored; writes the rest in bulk
(``staging``); adds the new readings to the daily summaries; locks the patients with new
blood-pressure readings and evaluates those (``evaluation``). The caller acknowledges the messages
only after the commit.

Lock order inside the transaction, the same in every transaction so that concurrent workers wait
instead of deadlocking: gateway rows, device rows, reading ids, daily totals rows, patient
advisory locks (each sorted), alert rows.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from homewatch import wire
from ingest_server import db, evaluation, staging
from ingest_server.db import Connection
from ingest_server.errors import InvalidMessage
from ingest_server.results import AlertChange, StoreResult
from ingest_server.validate import QuarantineReason, impossible_value

log = logging.getLogger(__name__)

#: Longest ``StoreResult.quarantine_detail`` (a backlog can set many readings aside).
_MAX_DETAIL = 2000
#: How stale ``last_seen_at`` of a gateway or device may get before a batch updates it: updating
#: it on every message would make concurrent batches of one gateway wait on its row.
LAST_SEEN_RESOLUTION_S = 60

# New gateways inserted (most are known: the anti-join keeps the insert to the new ones), and the
# stale last_seen_at of known ones brought forward.
UPSERT_GATEWAYS = """
WITH seen AS (
    SELECT g AS gateway_id FROM unnest(%(ids)b::text[]) AS g
), new AS (
    INSERT INTO gateways (gateway_id, first_seen_at, last_seen_at)
    SELECT gateway_id, now(), now() FROM seen
    WHERE NOT EXISTS (SELECT FROM gateways AS known WHERE known.gateway_id = seen.gateway_id)
    ORDER BY gateway_id
    ON CONFLICT (gateway_id) DO NOTHING
)
UPDATE gateways SET last_seen_at = now()
FROM (SELECT gateway_id FROM gateways
      WHERE gateway_id = ANY(%(ids)b::text[])
        AND last_seen_at < now() - make_interval(secs => %(stale)s)
      ORDER BY gateway_id FOR NO KEY UPDATE) AS stale
WHERE gateways.gateway_id = stale.gateway_id
"""

UPSERT_DEVICES = """
WITH seen AS (
    SELECT * FROM unnest(%(keys)b::text[], %(manufacturers)b::text[], %(models)b::text[],
                         %(serials)b::text[], %(addresses)b::text[], %(firmware)b::text[])
        AS v(device_key, manufacturer, model, serial_number, address, firmware_revision)
), new AS (
    INSERT INTO devices (device_key, manufacturer, model, serial_number, address,
                         firmware_revision, first_seen_at, last_seen_at)
    SELECT seen.*, now(), now() FROM seen
    WHERE NOT EXISTS (SELECT FROM devices AS known WHERE known.device_key = seen.device_key)
    ORDER BY device_key
    ON CONFLICT (device_key) DO NOTHING
)
UPDATE devices AS d SET
    manufacturer = coalesce(v.manufacturer, d.manufacturer),
    model = coalesce(v.model, d.model),
    serial_number = coalesce(v.serial_number, d.serial_number),
    address = v.address,
    firmware_revision = coalesce(v.firmware_revision, d.firmware_revision),
    first_seen_at = coalesce(d.first_seen_at, now()),
    last_seen_at = now()
FROM (SELECT seen.*
      FROM devices AS cur JOIN seen USING (device_key)
      WHERE cur.device_key = ANY(%(keys)b::text[])
        AND (cur.last_seen_at IS NULL
         OR cur.last_seen_at < now() - make_interval(secs => %(stale)s)
         OR cur.address IS DISTINCT FROM seen.address
         OR cur.manufacturer IS DISTINCT FROM coalesce(seen.manufacturer, cur.manufacturer)
         OR cur.model IS DISTINCT FROM coalesce(seen.model, cur.model)
         OR cur.serial_number IS DISTINCT FROM coalesce(seen.serial_number, cur.serial_number)
         OR cur.firmware_revision IS DISTINCT FROM coalesce(seen.firmware_revision,
                                                            cur.firmware_revision))
      ORDER BY seen.device_key FOR NO KEY UPDATE OF cur) AS v
WHERE d.device_key = v.device_key
"""

# Per reading: the patient its device was bound to at measured_at (NULL: nobody), whether it is
# already stored (by id alone), whether it is older than the retention. Subqueries per reading, so
# that each is an index probe whatever the planner guesses of the arrays' sizes.
SORT_OUT = """
SELECT r.ord,
       (SELECT patient_id FROM device_bindings
        WHERE device_key = r.device_key
          AND valid_from <= r.measured_at AND (valid_to IS NULL OR r.measured_at < valid_to)
        ORDER BY valid_from DESC
        LIMIT 1),
       EXISTS (SELECT FROM reading_ids AS k WHERE k.reading_id = r.reading_id),
       r.measured_at < (SELECT now() - retention FROM storage_settings)
FROM unnest(%b::uuid[], %b::text[], %b::timestamptz[]) WITH ORDINALITY
     AS r(reading_id, device_key, measured_at, ord)
ORDER BY r.ord
"""

INSERT_QUARANTINE = """
INSERT INTO quarantine (topic, payload, reason, detail, reading_id) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (reading_id) WHERE reading_id IS NOT NULL DO NOTHING
"""

#: First key of the two-key pg_advisory_xact_lock taken per patient while evaluating ("HWAP").
PATIENT_LOCK_NAMESPACE = 0x48574150
# Advisory locks, in the order of their keys (a hash collision then costs a wait, never a
# deadlock): in memory, where a row lock per patient would write WAL and dirty the patient's page.
# At most one per message of the batch (settings.batch_max_messages, capped at 2,000), far below
# the server's lock table (max_locks_per_transaction 64 x max_connections 100 = 6,400 by default).
LOCK_PATIENTS = """
SELECT count(pg_advisory_xact_lock(%(namespace)s, key))
FROM (SELECT DISTINCT hashtext(p) AS key FROM unnest(%(patients)b::text[]) AS p ORDER BY 1) AS k
"""

ADD_BP_DAILY = """
SELECT homewatch_add_bp_daily(%b::text[], %b::timestamptz[], %b::real[], %b::real[], %b::real[])
"""
ADD_GLUCOSE_DAILY = """
SELECT homewatch_add_glucose_daily(%b::text[], %b::timestamptz[], %b::real[], %b::boolean[])
"""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One MQTT message for the write path: its readings, or why it has none."""

    topic: str
    payload: bytes
    message: wire.ReadingsMessage | None = None
    invalid: InvalidMessage | None = None
    #: The gateway the topic names (for results of messages that did not parse).
    gateway_id: str | None = None

    def __post_init__(self) -> None:
        if (self.message is None) == (self.invalid is None):
            raise ValueError("an Incoming holds either a message or the reason it is invalid")


@dataclass(slots=True)
class _Tally:
    """What happens to one message's readings, filled in as the batch goes."""

    stored: list[wire.Reading] = field(default_factory=list)
    duplicates: list[wire.Reading] = field(default_factory=list)
    set_aside: list[tuple[wire.Reading, QuarantineReason, str]] = field(default_factory=list)
    alerts: list[AlertChange] = field(default_factory=list)


class _Entry(NamedTuple):
    """One reading of the batch, in batch order (``ord``). (A tuple: there are many.)"""

    ord: int
    message: int
    gateway_id: str
    reading: wire.Reading


async def store_batch(conn: Connection, items: Sequence[Incoming]) -> list[StoreResult]:
    """Store ``items`` in one transaction, committed when this returns; one result per item."""
    sightings: list[tuple[object, ...]] = []
    try:
        async with db.transaction(conn):
            results = await _store(conn, items, sightings)
    except BaseException:
        staging.forget(conn)  # created in the transaction rolled back, if it was there
        raise
    if not db.in_transaction(conn):  # committed for good (not a savepoint of an outer block)
        _sightings.mark(sightings, time.monotonic())
    return results


async def insert_quarantine(
    conn: Connection,
    rows: Sequence[tuple[str, bytes, str, str | None, uuid.UUID | None]],
) -> None:
    """Quarantine rows (topic, payload, reason, detail, reading_id); a reading already set aside
    (same ``reading_id``) keeps its first row."""
    if rows:
        async with conn.cursor() as cur:
            await cur.executemany(INSERT_QUARANTINE, rows)


async def _store(
    conn: Connection, items: Sequence[Incoming], sightings: list[tuple[object, ...]]
) -> list[StoreResult]:
    tallies = [_Tally() for _ in items]
    await insert_quarantine(
        conn,
        [
            (i.topic, i.payload, str(i.invalid.reason), i.invalid.detail, None)
            for i in items
            if i.invalid is not None
        ],
    )
    messages = [(n, i.message) for n, i in enumerate(items) if i.message is not None]
    entries: list[_Entry] = []
    for n, m in messages:
        for r in m.readings:
            entries.append(_Entry(len(entries), n, m.gateway_id, r))
    if entries:
        sightings += await _record_sources(conn, [m for _, m in messages])
        bound = await _sort_out(conn, entries, tallies)
        await insert_quarantine(
            conn,
            [
                (items[n].topic, _one_reading(m, reading), str(reason), detail, reading.reading_id)
                for n, m in messages
                for reading, reason, detail in tallies[n].set_aside
            ],
        )
        new_ids = await staging.write(conn, [(e.ord, e.gateway_id, e.reading, p) for e, p in bound])
        new = _claim(bound, new_ids, tallies)
        if new:
            await _after_insert(conn, new, tallies)
    return [_result(item, tally) for item, tally in zip(items, tallies, strict=True)]


class _Sightings:
    """Gateways and devices this process recorded lately, per database: a batch records only
    those not recorded in the last ``LAST_SEEN_RESOLUTION_S`` (a device by everything it says
    about itself, so a new address or firmware is recorded at once). Marked after the commit.
    Holds what was seen within that window only: at most what arrives in it."""

    MAX_ENTRIES = 500_000

    def __init__(self) -> None:
        self._at: dict[tuple[object, ...], float] = {}

    def due(self, key: tuple[object, ...], now: float) -> bool:
        at = self._at.get(key)
        return at is None or now - at >= LAST_SEEN_RESOLUTION_S

    def mark(self, keys: Iterable[tuple[object, ...]], now: float) -> None:
        for key in keys:
            self._at[key] = now
        if len(self._at) > self.MAX_ENTRIES:
            self._at = {k: t for k, t in self._at.items() if now - t < LAST_SEEN_RESOLUTION_S}
            if len(self._at) > self.MAX_ENTRIES:
                self._at.clear()


_sightings = _Sightings()


async def _record_sources(
    conn: Connection, messages: list[wire.ReadingsMessage]
) -> list[tuple[object, ...]]:
    """Gateways and devices of the batch recorded, their last sighting recent; the sightings to
    mark once the transaction commits."""
    database = (conn.info.host, conn.info.port, conn.info.dbname)
    now = time.monotonic()
    gateways = sorted(
        {m.gateway_id for m in messages if _sightings.due((database, "g", m.gateway_id), now)}
    )
    devices = {
        r.device.device_key: r.device
        for m in messages
        for r in m.readings
        if _sightings.due((database, "d", r.device), now)
    }
    if gateways:
        await db.execute(conn, UPSERT_GATEWAYS, {"ids": gateways, "stale": LAST_SEEN_RESOLUTION_S})
    if devices:
        keys = sorted(devices)
        await db.execute(
            conn,
            UPSERT_DEVICES,
            {
                "keys": keys,
                "manufacturers": [devices[k].manufacturer for k in keys],
                "models": [devices[k].model for k in keys],
                "serials": [devices[k].serial_number for k in keys],
                "addresses": [devices[k].address for k in keys],
                "firmware": [devices[k].firmware_revision for k in keys],
                "stale": LAST_SEEN_RESOLUTION_S,
            },
        )
    return [(database, "g", g) for g in gateways] + [(database, "d", d) for d in devices.values()]


async def _sort_out(
    conn: Connection, entries: list[_Entry], tallies: list[_Tally]
) -> list[tuple[_Entry, str]]:
    """Count duplicates and set readings aside into ``tallies``; the (entry, patient) to store.

    A reading already stored is a duplicate whatever else is true of it. Then impossible values
    first: such a reading never becomes storable, whereas an unbound one is kept to be ingested
    again once its device is bound (one quarantine row per reading: the first reason stays).
    """
    rows = await db.fetch_tuples(
        conn,
        SORT_OUT,
        (
            [e.reading.reading_id for e in entries],
            [e.reading.device.device_key for e in entries],
            [e.reading.measured_at for e in entries],
        ),
        binary=True,
    )
    bound: list[tuple[_Entry, str]] = []
    for entry, (_, patient_id, known, expired) in zip(entries, rows, strict=True):
        tally, reading = tallies[entry.message], entry.reading
        if known:
            tally.duplicates.append(reading)
            continue
        problem = impossible_value(reading)
        if problem is not None:
            tally.set_aside.append((reading, QuarantineReason.IMPOSSIBLE_VALUE, problem))
        elif expired:
            tally.set_aside.append(
                (
                    reading,
                    QuarantineReason.OUTSIDE_RETENTION,
                    f"measured at {reading.measured_at.isoformat()}, before the retention period",
                )
            )
        elif patient_id is None:
            tally.set_aside.append(
                (
                    reading,
                    QuarantineReason.UNBOUND_DEVICE,
                    f"device {reading.device.device_key!r} bound to no patient at "
                    f"{reading.measured_at.isoformat()}",
                )
            )
        else:
            bound.append((entry, patient_id))
    return bound


def _claim(
    bound: list[tuple[_Entry, str]], new_ids: set[uuid.UUID], tallies: list[_Tally]
) -> list[tuple[_Entry, str]]:
    """Which of ``bound`` were stored now: the first copy of each new id, in batch order."""
    new: list[tuple[_Entry, str]] = []
    unclaimed = set(new_ids)
    for entry, patient_id in bound:
        tally = tallies[entry.message]
        if entry.reading.reading_id in unclaimed:
            unclaimed.discard(entry.reading.reading_id)
            tally.stored.append(entry.reading)
            new.append((entry, patient_id))
        else:
            tally.duplicates.append(entry.reading)
    return new


async def _after_insert(
    conn: Connection, new: list[tuple[_Entry, str]], tallies: list[_Tally]
) -> None:
    """Add the new readings to the daily summaries; evaluate the new blood-pressure ones."""
    bp = [(p, e.reading) for e, p in new if isinstance(e.reading, wire.BloodPressureReading)]
    glucose = [(p, e.reading) for e, p in new if isinstance(e.reading, wire.GlucoseReading)]
    if bp:
        await db.execute(
            conn,
            ADD_BP_DAILY,
            (
                [p for p, _ in bp],
                [r.measured_at for _, r in bp],
                [r.values.systolic.value for _, r in bp],
                [r.values.diastolic.value for _, r in bp],
                [r.values.pulse_rate.value if r.values.pulse_rate else None for _, r in bp],
            ),
        )
    if glucose:
        await db.execute(
            conn,
            ADD_GLUCOSE_DAILY,
            (
                [p for p, _ in glucose],
                [r.measured_at for _, r in glucose],
                [r.values.mmol_per_l.value for _, r in glucose],
                [r.control_solution for _, r in glucose],
            ),
        )
    evaluated = [
        evaluation.NewReading(entry.message, entry.reading, patient_id)
        for entry, patient_id in new
        if _evaluated(entry.reading)
    ]
    if not evaluated:
        return
    # Workers run concurrently: evaluation is serialised per patient. Taken after the inserts,
    # so the history loaded next holds every reading committed by whoever held a lock before.
    await db.execute(
        conn,
        LOCK_PATIENTS,
        {"namespace": PATIENT_LOCK_NAMESPACE, "patients": list({n.patient_id for n in evaluated})},
    )
    changes = await evaluation.evaluate(conn, evaluated)
    for message, alert_changes in changes.items():
        tallies[message].alerts.extend(alert_changes)


def _evaluated(reading: wire.Reading) -> bool:
    """Whether the rules look at a newly stored reading: blood pressure only, for now.

    Glucose rules are a later issue. When they come, a control-solution record
    (``GlucoseReading.control_solution``) must stay out of them: it tests the meter with a
    liquid of known concentration, it says nothing about the patient.
    """
    return isinstance(reading, wire.BloodPressureReading)


def _one_reading(message: wire.ReadingsMessage, reading: wire.Reading) -> bytes:
    """A reading set aside, as the message it would have come in alone (it can be re-ingested)."""
    return message.model_copy(update={"readings": [reading]}).to_bytes()


def _result(item: Incoming, tally: _Tally) -> StoreResult:
    if item.invalid is not None:
        return StoreResult(
            topic=item.topic,
            gateway_id=item.gateway_id,
            quarantined=1,
            quarantine_reason=str(item.invalid.reason),
            quarantine_detail=item.invalid.detail,
        )
    assert item.message is not None
    set_aside = tally.set_aside
    details = "; ".join(detail for *_, detail in set_aside)[:_MAX_DETAIL] or None
    if set_aside:
        log.warning(
            "set aside %d of %d readings from %s on %s: %s",
            len(set_aside),
            len(item.message.readings),
            item.message.gateway_id,
            item.topic,
            details,
        )
    return StoreResult(
        topic=item.topic,
        gateway_id=item.message.gateway_id,
        stored=len(tally.stored),
        duplicates=len(tally.duplicates),
        quarantined=len(set_aside),
        quarantine_reason="; ".join(sorted({str(reason) for _, reason, _ in set_aside})) or None,
        quarantine_detail=details,
        stored_reading_ids=tuple(str(r.reading_id) for r in tally.stored),
        alerts=tuple(tally.alerts),
        stored_glucose=sum(1 for r in tally.stored if isinstance(r, wire.GlucoseReading)),
        duplicates_glucose=sum(1 for r in tally.duplicates if isinstance(r, wire.GlucoseReading)),
    )
