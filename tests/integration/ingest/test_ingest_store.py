"""The storage path without MQTT: idempotent readings, patient resolution, alert upkeep."""

from __future__ import annotations

from datetime import timedelta

import pytest

from homewatch import wire
from ingest_server import db, store
from ingest_server.errors import BindingConflict, UnknownPatient
from tests.integration.ingest.ingest_support import (
    bp_reading,
    device,
    message,
    minutes_ago,
    query,
    unique,
)

TOPIC = "t/gateways/gw/readings"


async def _patient_with_cuff(
    pool: db.Pool, bound_since_minutes: float = 600
) -> tuple[str, wire.DeviceIdentity]:
    patient_id, cuff = unique("patient"), device(unique("SN"))
    async with db.connection(pool) as conn:
        await store.create_patient(conn, patient_id, "Test Patient")
        await store.bind_device(conn, cuff.device_key, patient_id, minutes_ago(bound_since_minutes))
    return patient_id, cuff


async def _store(pool: db.Pool, msg: wire.ReadingsMessage) -> store.StoreResult:
    async with db.connection(pool) as conn:
        return await store.store_message(conn, msg, TOPIC)


async def _alerts(pool: db.Pool, patient_id: str) -> list[store.AlertRow]:
    async with db.connection(pool) as conn:
        return await store.list_alerts(conn, patient_id)


async def test_normal_reading_is_stored_and_raises_nothing(
    pool: db.Pool, database_url: str
) -> None:
    patient_id, cuff = await _patient_with_cuff(pool)
    reading = bp_reading(cuff, minutes_ago(10), 128, 82)
    result = await _store(pool, message("gw-1", reading))
    assert (result.stored, result.duplicates, result.quarantined, result.alerts) == (1, 0, 0, ())
    assert result.stored_reading_ids == (str(reading.reading_id),)
    rows = query(
        database_url,
        "SELECT patient_id, device_key, gateway_id, systolic_mmhg, diastolic_mmhg, pulse_bpm, raw "
        "FROM bp_readings WHERE reading_id = %s",
        (reading.reading_id,),
    )
    assert rows == [
        (patient_id, cuff.device_key, "gw-1", 128.0, 82.0, 70.0, bytes.fromhex(reading.raw))
    ]
    assert await _alerts(pool, patient_id) == []
    seen = query(
        database_url,
        "SELECT manufacturer, serial_number, last_seen_at IS NOT NULL FROM devices"
        " WHERE device_key = %s",
        (cuff.device_key,),
    )
    assert seen == [("Acme", cuff.serial_number, True)]


async def test_crisis_raises_one_alert_naming_the_reading(pool: db.Pool) -> None:
    patient_id, cuff = await _patient_with_cuff(pool)
    reading = bp_reading(cuff, minutes_ago(20), 192, 124)
    result = await _store(pool, message("gw-1", reading))
    assert result.alerts_raised == 1 and result.alerts_updated == 0
    [alert] = await _alerts(pool, patient_id)
    assert (alert.rule_id, alert.severity, alert.status, alert.occurrences) == (
        "bp.hypertensive_crisis",
        "high",
        "open",
        1,
    )
    assert alert.evidence["reading_ids"] == [str(reading.reading_id)]
    assert alert.evidence["statistics"]["max_systolic_mmhg"] == 192
    assert alert.rule_version == 1


async def test_redelivered_message_stores_once_and_does_not_bump_the_alert(
    pool: db.Pool, database_url: str
) -> None:
    patient_id, cuff = await _patient_with_cuff(pool)
    msg = message("gw-1", bp_reading(cuff, minutes_ago(20), 200, 100))
    first = await _store(pool, msg)
    again = await _store(pool, msg)
    assert (first.stored, first.duplicates) == (1, 0)
    assert (again.stored, again.duplicates, again.alerts) == (0, 1, ())
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(1,)]
    [alert] = await _alerts(pool, patient_id)
    assert alert.occurrences == 1


async def test_same_reading_twice_in_one_message_is_stored_once(pool: db.Pool) -> None:
    _, cuff = await _patient_with_cuff(pool)
    reading = bp_reading(cuff, minutes_ago(5), 120, 80)
    result = await _store(pool, message("gw-1", reading, reading))
    assert (result.stored, result.duplicates) == (1, 1)


async def test_remeasurement_escalates_the_same_alert_to_urgent(pool: db.Pool) -> None:
    patient_id, cuff = await _patient_with_cuff(pool)
    first = bp_reading(cuff, minutes_ago(30), 188, 110)
    second = bp_reading(cuff, minutes_ago(25), 186, 112)
    await _store(pool, message("gw-1", first))
    result = await _store(pool, message("gw-1", second))
    assert result.alerts_updated == 1 and result.alerts_raised == 0
    [alert] = await _alerts(pool, patient_id)
    assert (alert.severity, alert.occurrences) == ("urgent", 2)
    assert alert.evidence["reading_ids"] == [str(first.reading_id), str(second.reading_id)]
    assert alert.title == "Hypertensive crisis confirmed"


async def test_late_reading_is_stored_and_evaluated_in_its_own_time(pool: db.Pool) -> None:
    patient_id, cuff = await _patient_with_cuff(pool, bound_since_minutes=5 * 24 * 60)
    # Today a normal reading; then a backlog reading from two days ago arrives, in crisis.
    await _store(pool, message("gw-1", bp_reading(cuff, minutes_ago(5), 125, 80)))
    late = bp_reading(cuff, minutes_ago(2 * 24 * 60), 195, 105)
    result = await _store(pool, message("gw-1", late))
    assert result.stored == 1 and result.alerts_raised == 1
    [alert] = await _alerts(pool, patient_id)
    assert alert.evidence["reading_ids"] == [str(late.reading_id)]
    assert alert.last_seen_at == late.measured_at


async def test_unbound_device_is_quarantined_with_a_reingestable_message(
    pool: db.Pool, database_url: str
) -> None:
    _, bound_cuff = await _patient_with_cuff(pool)
    stray = device(unique("SN-stray"))
    good = bp_reading(bound_cuff, minutes_ago(3), 120, 80)
    orphan = bp_reading(stray, minutes_ago(3), 190, 100)
    msg = message("gw-2", good, orphan)
    result = await _store(pool, msg)
    assert (result.stored, result.quarantined, result.quarantine_reason) == (1, 1, "unbound device")
    rows = query(
        database_url,
        "SELECT reason, topic, payload FROM quarantine WHERE reading_id = %s",
        (orphan.reading_id,),
    )
    assert len(rows) == 1
    reason, topic, payload = rows[0]
    assert (reason, topic) == ("unbound device", TOPIC)
    kept = wire.ReadingsMessage.from_bytes(payload)
    assert kept.gateway_id == "gw-2" and kept.readings == [orphan]
    # Redelivery does not quarantine it twice; the bound reading is a duplicate.
    again = await _store(pool, msg)
    assert (again.stored, again.duplicates, again.quarantined) == (0, 1, 1)
    assert query(
        database_url, "SELECT count(*) FROM quarantine WHERE reading_id = %s", (orphan.reading_id,)
    ) == [(1,)]
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE reading_id = %s", (orphan.reading_id,)
    ) == [(0,)]


async def test_reading_before_the_binding_started_is_unbound(pool: db.Pool) -> None:
    _, cuff = await _patient_with_cuff(pool, bound_since_minutes=60)
    result = await _store(pool, message("gw-1", bp_reading(cuff, minutes_ago(61), 120, 80)))
    assert (result.stored, result.quarantined) == (0, 1)


async def test_patient_resolved_from_the_binding_valid_at_measured_at(
    pool: db.Pool, database_url: str
) -> None:
    first_owner, cuff = await _patient_with_cuff(pool, bound_since_minutes=600)
    second_owner = unique("patient")
    handover = minutes_ago(60)
    async with db.connection(pool) as conn:
        await store.create_patient(conn, second_owner, "Second Owner")
        await store.bind_device(conn, cuff.device_key, second_owner, handover)
        history = await store.device_bindings(conn, cuff.device_key)
    assert [(b.patient_id, b.valid_to) for b in history] == [
        (first_owner, handover),
        (second_owner, None),
    ]
    before = bp_reading(cuff, handover - timedelta(minutes=1), 121, 81)
    after = bp_reading(cuff, handover + timedelta(minutes=1), 122, 82)
    await _store(pool, message("gw-1", before, after))
    rows = query(
        database_url,
        "SELECT reading_id, patient_id FROM bp_readings WHERE device_key = %s ORDER BY measured_at",
        (cuff.device_key,),
    )
    assert rows == [(before.reading_id, first_owner), (after.reading_id, second_owner)]


async def test_bind_device_refuses_overlaps_and_unknown_patients(pool: db.Pool) -> None:
    patient_id, cuff = await _patient_with_cuff(pool, bound_since_minutes=60)
    other = unique("patient")
    async with db.connection(pool) as conn:
        await store.create_patient(conn, other, "Other")
        [current] = await store.device_bindings(conn, cuff.device_key)
        same = await store.bind_device(conn, cuff.device_key, patient_id, minutes_ago(10))
        assert same == current  # already bound to this patient: unchanged
        with pytest.raises(BindingConflict):
            await store.bind_device(conn, cuff.device_key, other, minutes_ago(120))
        await store.bind_device(conn, cuff.device_key, other, minutes_ago(30))
        with pytest.raises(BindingConflict):  # would start inside the closed period of the first
            await store.bind_device(conn, cuff.device_key, patient_id, minutes_ago(45))
        with pytest.raises(UnknownPatient):
            await store.bind_device(conn, cuff.device_key, "nobody-" + unique("x"))
        history = await store.device_bindings(conn, cuff.device_key)
    assert [b.patient_id for b in history] == [patient_id, other]


async def test_failed_measurement_is_stored_with_nulls_and_raises_nothing(
    pool: db.Pool, database_url: str
) -> None:
    patient_id, cuff = await _patient_with_cuff(pool)
    reading = bp_reading(cuff, minutes_ago(2), None, None, pulse=None)
    result = await _store(pool, message("gw-1", reading))
    assert result.stored == 1 and result.alerts == ()
    assert query(
        database_url,
        "SELECT systolic_mmhg, pulse_bpm FROM bp_readings WHERE reading_id = %s",
        (reading.reading_id,),
    ) == [(None, None)]
    assert await _alerts(pool, patient_id) == []
