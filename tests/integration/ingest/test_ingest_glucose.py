"""Glucose readings and device-clock fields on the storage path, without MQTT."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from homewatch import wire
from ingest_server import db, store
from ingest_server.errors import InvalidMessage
from ingest_server.validate import QuarantineReason, impossible_value, parse_message
from tests.integration.ingest.ingest_support import (
    GLUCOSE_CONTEXT,
    RAW_GLUCOSE_CONTEXT,
    bp_reading,
    device,
    glucose_reading,
    message,
    meter,
    minutes_ago,
    query,
    unique,
    with_glucose,
)

TOPIC = "t/gateways/gw/readings"
HI = "result_higher_than_device_can_process"
GLUCOSE_COLUMNS = (
    "patient_id, device_key, gateway_id, measured_at, device_time, received_at, time_source, "
    "clock_status, clock_offset_s, sequence_number, mmol_per_l, mg_per_dl, reported_unit, "
    "sample_type, sample_location, sensor_status, context, control_solution, raw, raw_context"
)


async def _patient_with(pool: db.Pool, *devices: wire.DeviceIdentity) -> str:
    patient_id = unique("patient")
    async with db.connection(pool) as conn:
        await store.create_patient(conn, patient_id, "Glucose Patient")
        for dev in devices:
            await store.bind_device(conn, dev.device_key, patient_id, minutes_ago(3 * 24 * 60))
    return patient_id


async def _store(pool: db.Pool, msg: wire.ReadingsMessage) -> store.StoreResult:
    # Through the bytes, as the consumer receives it: what is stored is what the wire carries.
    parsed = wire.ReadingsMessage.from_bytes(msg.to_bytes())
    async with db.connection(pool) as conn:
        return await store.store_message(conn, parsed, TOPIC)


def _glucose_row(database_url: str, reading: wire.GlucoseReading) -> dict[str, object]:
    rows = query(
        database_url,
        f"SELECT {GLUCOSE_COLUMNS} FROM glucose_readings WHERE reading_id = %s",
        (reading.reading_id,),
    )
    assert len(rows) == 1, rows
    return dict(zip([c.strip() for c in GLUCOSE_COLUMNS.split(",")], rows[0], strict=True))


async def test_mol_per_l_meter_reading_with_context_is_stored_in_both_units(
    pool: db.Pool, database_url: str
) -> None:
    gl = meter(unique("SN"))
    patient_id = await _patient_with(pool, gl)
    clock = wire.DeviceClock(status=wire.ClockStatus.SYNCHRONISED, offset_seconds=1.5)
    reading = glucose_reading(
        gl,
        minutes_ago(90),
        7,
        mantissa=55,  # 55e-4 mol/L = 5.5 mmol/L
        exponent=-4,
        unit="mol/L",
        context=GLUCOSE_CONTEXT,
        raw_context=RAW_GLUCOSE_CONTEXT,
        clock=clock,
    )
    result = await _store(pool, message("gw-1", reading))
    assert (result.stored, result.stored_glucose, result.duplicates, result.quarantined) == (
        1,
        1,
        0,
        0,
    )
    assert result.stored_reading_ids == (str(reading.reading_id),) and result.alerts == ()
    row = _glucose_row(database_url, reading)
    assert row.pop("mmol_per_l") == pytest.approx(5.5)
    assert row.pop("mg_per_dl") == pytest.approx(99.088, abs=1e-3)
    assert row == {
        "patient_id": patient_id,
        "device_key": gl.device_key,
        "gateway_id": "gw-1",
        "measured_at": reading.measured_at,
        "device_time": reading.device_time,
        "received_at": reading.received_at,
        "time_source": "device",
        "clock_status": "synchronised",
        "clock_offset_s": 1.5,
        "sequence_number": 7,
        "reported_unit": "mol/L",
        "sample_type": "capillary_plasma",
        "sample_location": "finger",
        "sensor_status": [],
        "context": GLUCOSE_CONTEXT.model_dump(mode="json"),
        "control_solution": False,
        "raw": bytes.fromhex(reading.raw),
        "raw_context": RAW_GLUCOSE_CONTEXT,
    }


async def test_kg_per_l_meter_reading_without_context_or_device_time(
    pool: db.Pool, database_url: str
) -> None:
    gl = meter(unique("SN"))
    await _patient_with(pool, gl)
    reading = glucose_reading(
        gl,
        minutes_ago(30),
        65535,  # the last sequence number before the meter wraps
        mantissa=111,  # 111e-5 kg/L = 111 mg/dL (the Accu-Chek Guide capture, SPEC.md 4.1)
        exponent=-5,
        unit="kg/L",
        time_source=wire.TimeSource.RECEIVED,
        clock=wire.DeviceClock(status=wire.ClockStatus.UNSET),
    ).model_copy(update={"device_time": None})
    result = await _store(pool, message("gw-1", reading))
    assert (result.stored, result.stored_glucose) == (1, 1)
    row = _glucose_row(database_url, reading)
    assert row["mg_per_dl"] == pytest.approx(111.0)
    assert row["mmol_per_l"] == pytest.approx(111 / 18.016, rel=1e-6)
    assert (row["reported_unit"], row["sequence_number"]) == ("kg/L", 65535)
    assert (row["context"], row["raw_context"], row["device_time"]) == (None, None, None)
    assert (row["time_source"], row["clock_status"], row["clock_offset_s"]) == (
        "received",
        "unset",
        None,
    )


async def test_hi_special_value_is_stored_without_a_concentration(
    pool: db.Pool, database_url: str
) -> None:
    gl = meter(unique("SN"))
    await _patient_with(pool, gl)
    reading = glucose_reading(
        gl,
        minutes_ago(20),
        12,
        mantissa=None,  # +INFINITY: above what the meter can measure
        exponent=0,
        unit="kg/L",
        sensor_status=[HI],
        status_bits=0x0020,
    )
    assert reading.values.mmol_per_l.value is None and reading.values.mg_per_dl.value is None
    result = await _store(pool, message("gw-1", reading))
    assert (result.stored, result.quarantined) == (1, 0)
    row = _glucose_row(database_url, reading)
    assert (row["mmol_per_l"], row["mg_per_dl"], row["sensor_status"]) == (None, None, [HI])


async def test_control_solution_is_stored_flagged_and_only_blood_pressure_is_evaluated(
    pool: db.Pool, database_url: str
) -> None:
    gl, cuff = meter(unique("SN")), device(unique("SN"))
    patient_id = await _patient_with(pool, gl, cuff)
    control = glucose_reading(
        gl,
        minutes_ago(15),
        3,
        mantissa=25,  # a high-level control solution, 25 mmol/L
        exponent=-3,
        unit="mol/L",
        sample_type="control_solution",
        sample_location="control_solution",
        type_location=0x4A,
    )
    patient_sample = glucose_reading(gl, minutes_ago(14), 4, mantissa=28, exponent=-3, unit="mol/L")
    crisis = bp_reading(cuff, minutes_ago(10), 195, 118)
    result = await _store(pool, message("gw-1", control, patient_sample, crisis))
    assert (result.stored, result.stored_glucose, result.quarantined) == (3, 2, 0)
    row = _glucose_row(database_url, control)
    assert (row["control_solution"], row["sample_type"], row["mmol_per_l"]) == (
        True,
        "control_solution",
        25.0,
    )
    assert _glucose_row(database_url, patient_sample)["control_solution"] is False
    # The crisis raises its alert; neither glucose reading is evidence of anything.
    [change] = result.alerts
    assert (change.rule_id, change.patient_id, change.reading_ids) == (
        "bp.hypertensive_crisis",
        patient_id,
        (str(crisis.reading_id),),
    )
    evidence = query(
        database_url, "SELECT evidence FROM alerts WHERE patient_id = %s", (patient_id,)
    )
    assert [e["reading_ids"] for (e,) in evidence] == [[str(crisis.reading_id)]]


async def test_redelivered_glucose_is_stored_once(pool: db.Pool, database_url: str) -> None:
    gl, cuff = meter(unique("SN")), device(unique("SN"))
    patient_id = await _patient_with(pool, gl, cuff)
    first = glucose_reading(gl, minutes_ago(60), 20, mantissa=61, exponent=-4, unit="mol/L")
    second = glucose_reading(gl, minutes_ago(40), 21, mantissa=72, exponent=-4, unit="mol/L")
    msg = message("gw-1", first, second, bp_reading(cuff, minutes_ago(50), 124, 79))
    once = await _store(pool, msg)
    again = await _store(pool, msg)
    assert (once.stored, once.stored_glucose, once.duplicates) == (3, 2, 0)
    assert (again.stored, again.duplicates, again.duplicates_glucose, again.alerts) == (
        0,
        3,
        2,
        (),
    )
    assert query(
        database_url, "SELECT count(*) FROM glucose_readings WHERE patient_id = %s", (patient_id,)
    ) == [(2,)]
    twice_in_one = glucose_reading(gl, minutes_ago(35), 22, mantissa=80, exponent=-4, unit="mol/L")
    result = await _store(pool, message("gw-1", twice_in_one, twice_in_one))
    assert (result.stored, result.duplicates, result.duplicates_glucose) == (1, 1, 1)


async def test_same_sequence_number_after_a_meter_reset_is_another_reading(
    pool: db.Pool, database_url: str
) -> None:
    gl = meter(unique("SN"))
    patient_id = await _patient_with(pool, gl)
    before = glucose_reading(
        gl, minutes_ago(2 * 24 * 60), 1, mantissa=50, exponent=-4, unit="mol/L"
    )
    after = glucose_reading(gl, minutes_ago(60), 1, mantissa=90, exponent=-4, unit="mol/L")
    assert before.reading_id != after.reading_id
    result = await _store(pool, message("gw-1", before, after))
    assert (result.stored, result.duplicates) == (2, 0)
    assert query(
        database_url,
        "SELECT sequence_number, mmol_per_l FROM glucose_readings WHERE patient_id = %s"
        " ORDER BY measured_at",
        (patient_id,),
    ) == [(1, 5.0), (1, 9.0)]


async def test_unbound_meter_is_quarantined_then_reingested_once_bound(
    pool: db.Pool, database_url: str
) -> None:
    bound_meter, stray = meter(unique("SN")), meter(unique("SN-stray"))
    await _patient_with(pool, bound_meter)
    good = glucose_reading(bound_meter, minutes_ago(30), 5, mantissa=60, exponent=-4, unit="mol/L")
    orphan = glucose_reading(stray, minutes_ago(30), 5, mantissa=65, exponent=-4, unit="mol/L")
    msg = message("gw-2", good, orphan)
    result = await _store(pool, msg)
    assert (result.stored, result.quarantined, result.quarantine_reason) == (1, 1, "unbound device")
    [(reason, payload)] = query(
        database_url,
        "SELECT reason, payload FROM quarantine WHERE reading_id = %s",
        (orphan.reading_id,),
    )
    assert reason == "unbound device"
    kept = wire.ReadingsMessage.from_bytes(payload)
    assert kept.gateway_id == "gw-2" and kept.readings == [orphan]
    again = await _store(pool, msg)  # a redelivery quarantines nothing twice
    assert (again.stored, again.duplicates, again.quarantined) == (0, 1, 1)
    assert query(
        database_url, "SELECT count(*) FROM quarantine WHERE reading_id = %s", (orphan.reading_id,)
    ) == [(1,)]

    # The meter gets its patient, from before the reading was taken: the kept message stores.
    owner = await _patient_with(pool)
    async with db.connection(pool) as conn:
        await store.bind_device(
            conn, stray.device_key, owner, orphan.measured_at - timedelta(days=1)
        )
        reingested = await store.store_message(conn, kept, TOPIC)
    assert (reingested.stored, reingested.stored_glucose, reingested.quarantined) == (1, 1, 0)
    assert _glucose_row(database_url, orphan)["patient_id"] == owner


IMPOSSIBLE = [
    pytest.param(-1.0, -18.016, "negative glucose", id="negative"),
    pytest.param(101.0, 101.0 * 18.016, "above 100 mmol/L", id="above-100-mmol"),
    pytest.param(5.5, 120.0, "glucose units disagree", id="units-disagree"),
    pytest.param(5.5, None, "one unit only", id="one-unit-missing"),
]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_nan_or_infinity_on_the_wire_is_off_contract(number: str) -> None:
    """JSON has no NaN; a device's special values travel as null. A sender that writes NaN or
    Infinity anyway sends an invalid message (quarantined whole, re-ingestable)."""
    gl = meter(unique("SN"))
    msg = message(
        "gw", glucose_reading(gl, minutes_ago(45), 31, mantissa=70, exponent=-4, unit="mol/L")
    )
    text = msg.to_bytes().decode()
    document = json.loads(text)
    document["readings"][0]["values"]["mmol_per_l"]["value"] = 1.5
    text = json.dumps(document).replace("1.5", number, 1)
    with pytest.raises(InvalidMessage) as caught:
        parse_message(TOPIC, text.encode(), topic_root="t")
    assert caught.value.reason is QuarantineReason.INVALID


@pytest.mark.parametrize(("mmol", "mg", "why"), IMPOSSIBLE)
async def test_impossible_glucose_is_quarantined_and_the_rest_stored(
    pool: db.Pool, database_url: str, mmol: float, mg: float | None, why: str
) -> None:
    gl, cuff = meter(unique("SN")), device(unique("SN"))
    patient_id = await _patient_with(pool, gl, cuff)
    good = glucose_reading(gl, minutes_ago(50), 30, mantissa=70, exponent=-4, unit="mol/L")
    bad = with_glucose(
        glucose_reading(gl, minutes_ago(45), 31, mantissa=70, exponent=-4, unit="mol/L"), mmol, mg
    )
    bp = bp_reading(cuff, minutes_ago(40), 130, 85)
    msg = message("gw-3", good, bad, bp)
    document = json.loads(msg.to_bytes())
    document["readings"][1]["values"]["mmol_per_l"]["value"] = mmol
    document["readings"][1]["values"]["mg_per_dl"]["value"] = mg
    parsed = wire.ReadingsMessage.from_bytes(json.dumps(document).encode())
    async with db.connection(pool) as conn:
        result = await store.store_message(conn, parsed, TOPIC)

    assert (result.stored, result.stored_glucose, result.quarantined) == (2, 1, 1)
    assert result.quarantine_reason == "impossible value"
    assert result.quarantine_detail is not None and why in result.quarantine_detail
    [(reason, detail, payload)] = query(
        database_url,
        "SELECT reason, detail, payload FROM quarantine WHERE reading_id = %s",
        (bad.reading_id,),
    )
    assert reason == "impossible value" and why in detail
    assert [r.reading_id for r in wire.ReadingsMessage.from_bytes(payload).readings] == [
        bad.reading_id
    ]
    assert query(
        database_url,
        "SELECT reading_id FROM glucose_readings WHERE patient_id = %s",
        (patient_id,),
    ) == [(good.reading_id,)]
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(1,)]


async def test_impossible_and_unbound_readings_in_one_message(
    pool: db.Pool, database_url: str
) -> None:
    stray = meter(unique("SN-stray"))
    impossible = with_glucose(
        glucose_reading(stray, minutes_ago(10), 1, mantissa=50, exponent=-4, unit="mol/L"),
        -5.0,
        -90.08,
    )
    unbound = glucose_reading(stray, minutes_ago(9), 2, mantissa=50, exponent=-4, unit="mol/L")
    result = await _store(pool, message("gw-4", impossible, unbound))
    assert (result.stored, result.quarantined) == (0, 2)
    assert result.quarantine_reason == "impossible value; unbound device"
    # An impossible reading stays impossible once its device is bound: that reason wins.
    reasons = query(
        database_url,
        "SELECT reading_id, reason FROM quarantine WHERE reading_id = ANY(%s) ORDER BY reason",
        ([impossible.reading_id, unbound.reading_id],),
    )
    assert reasons == [
        (impossible.reading_id, "impossible value"),
        (unbound.reading_id, "unbound device"),
    ]


@pytest.mark.parametrize(
    ("mmol", "mg"),
    [
        pytest.param(None, None, id="special-value"),
        pytest.param(0.0, 0.0, id="zero"),
        pytest.param(100.0, 1801.6, id="100-mmol"),
        pytest.param(5.0, 5.0 * 18.016 * 1.0099, id="just-within-1-percent"),
        pytest.param(5.0, 5.0 * 18.016 / 1.0099, id="just-within-1-percent-below"),
        pytest.param(5.6, 101.0, id="rounded-mmol"),
    ],
)
def test_possible_glucose_values(mmol: float | None, mg: float | None) -> None:
    reading = glucose_reading(meter("SN"), minutes_ago(1), 1, mantissa=1, exponent=0, unit="kg/L")
    assert impossible_value(with_glucose(reading, mmol, mg)) is None


@pytest.mark.parametrize(
    ("mmol", "mg"),
    [
        pytest.param(100.1, 100.1 * 18.016, id="over-100-mmol"),
        pytest.param(100.0, 1802.0, id="100-mmol-but-over-in-mg"),
        pytest.param(5.0, 5.0 * 18.016 * 1.0102, id="just-over-1-percent"),
        pytest.param(5.0, 5.0 * 18.016 / 1.0102, id="just-over-1-percent-below"),
        pytest.param(0.0, 1.0, id="zero-and-not"),
        pytest.param(-0.1, -1.8016, id="slightly-negative"),
    ],
)
def test_impossible_glucose_values(mmol: float | None, mg: float | None) -> None:
    reading = glucose_reading(meter("SN"), minutes_ago(1), 1, mantissa=1, exponent=0, unit="kg/L")
    assert impossible_value(with_glucose(reading, mmol, mg)) is not None


def test_blood_pressure_impossible_values_but_not_implausible_ones() -> None:
    cuff = device("SN")
    # Implausible pressures are stored and left to alerting.plausibility (see impossible_value).
    assert impossible_value(bp_reading(cuff, minutes_ago(1), 320, 10)) is None
    assert impossible_value(bp_reading(cuff, minutes_ago(1), None, None, pulse=None)) is None
    assert "systolic -5" in impossible_value(bp_reading(cuff, minutes_ago(1), -5, 80))
    assert "diastolic 900" in impossible_value(bp_reading(cuff, minutes_ago(1), 120, 900))
    assert "pulse 500" in impossible_value(bp_reading(cuff, minutes_ago(1), 120, 80, pulse=500))


async def test_blood_pressure_clock_fields_are_stored(pool: db.Pool, database_url: str) -> None:
    cuff = device(unique("SN"))
    await _patient_with(pool, cuff)
    plain = bp_reading(cuff, minutes_ago(30), 121, 79)
    corrected = bp_reading(cuff, minutes_ago(20), 122, 78).model_copy(
        update={
            "time_source": wire.TimeSource.DEVICE_CORRECTED,
            "device_clock": wire.DeviceClock(
                status=wire.ClockStatus.CORRECTED, offset_seconds=-3605.25
            ),
        }
    )
    result = await _store(pool, message("gw-1", plain, corrected))
    assert (result.stored, result.stored_glucose) == (2, 0)
    rows = query(
        database_url,
        "SELECT reading_id, time_source, clock_status, clock_offset_s FROM bp_readings"
        " WHERE device_key = %s ORDER BY measured_at",
        (cuff.device_key,),
    )
    assert rows == [
        (plain.reading_id, "device", "unknown", None),
        (corrected.reading_id, "device_corrected", "corrected", -3605.25),
    ]


async def test_gateway_without_clock_fields_reads_as_unknown(
    pool: db.Pool, database_url: str
) -> None:
    # A message from a gateway older than the clock check: the fields are absent on the wire.
    gl = meter(unique("SN"))
    await _patient_with(pool, gl)
    reading = glucose_reading(gl, minutes_ago(5), 9, mantissa=66, exponent=-4, unit="mol/L")
    document = json.loads(message("gw-old", reading).to_bytes())
    for r in document["readings"]:
        del r["time_source"], r["device_clock"]
    parsed = wire.ReadingsMessage.from_bytes(json.dumps(document).encode())
    async with db.connection(pool) as conn:
        assert (await store.store_message(conn, parsed, TOPIC)).stored == 1
    row = _glucose_row(database_url, reading)
    assert (row["time_source"], row["clock_status"], row["clock_offset_s"]) == (
        "device",
        "unknown",
        None,
    )
