"""Daily summaries (bp_daily, glucose_daily) match the readings stored, whatever the order and
however often the readings arrive, and follow the deployment's time zone for days and mornings."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from homewatch import wire
from ingest_server import batch_store, db, store, summaries
from ingest_server.migrate import migrate
from tests.fixtures.postgres import database_url_for
from tests.integration.ingest.ingest_support import (
    bp_reading,
    device,
    glucose_reading,
    message,
    meter,
    query,
    unique,
)
from tests.integration.ingest.summary_check import (
    assert_same,
    expected_bp_daily,
    expected_glucose_daily,
    stored_daily,
)

TOPIC = "t/gateways/gw-sum/readings"
# Three days back, at fixed UTC hours: mornings, afternoons and evenings in UTC.
DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return DAY + timedelta(days=day, hours=hour, minutes=minute)


async def _patient(pool: db.Pool, *devices: wire.DeviceIdentity) -> str:
    patient_id = unique("patient")
    async with db.connection(pool) as conn:
        await store.create_patient(conn, patient_id, "Summary Test")
        for d in devices:
            await store.bind_device(conn, d.device_key, patient_id, DAY - timedelta(days=30))
    return patient_id


def _bp_history(cuff: wire.DeviceIdentity) -> list[wire.BloodPressureReading]:
    readings = []
    for day in range(3):
        readings += [
            bp_reading(cuff, _at(day, 7, 0), 131 + day, 84),  # morning pair
            bp_reading(cuff, _at(day, 7, 2), 127 + day, 82, pulse=None),
            bp_reading(cuff, _at(day, 13), 150, 95),  # afternoon: neither
            bp_reading(cuff, _at(day, 20), 142, 91 + day),  # evening
            bp_reading(cuff, _at(day, 3, 59), 120, 80),  # before 04:00: night
        ]
    readings += [
        bp_reading(cuff, _at(1, 8), 320, 90),  # implausible: counted, not averaged
        bp_reading(cuff, _at(1, 21), None, None, pulse=None),  # failed measurement
        bp_reading(cuff, _at(2, 9), 90, 95),  # diastolic not below systolic
        bp_reading(cuff, _at(2, 23, 59), 200, 121),  # a crisis, still a reading of the day
    ]
    return readings


def _glucose_history(gl: wire.DeviceIdentity) -> list[wire.GlucoseReading]:
    values = [  # (day, hour, mmol/L x 10, or None for a HI result)
        (0, 7, 55), (0, 12, 28), (0, 19, 35), (0, 22, 39),
        (1, 7, 100), (1, 12, 101), (1, 19, 139), (1, 22, 140),
        (2, 7, 450), (2, 12, None), (2, 19, 62),
    ]  # fmt: skip
    readings = [
        glucose_reading(
            gl, _at(d, h), seq, mantissa=v, exponent=-4, unit="mol/L"
        )  # v x 10^-4 mol/L = v / 10 mmol/L
        for seq, (d, h, v) in enumerate(values, start=1)
    ]
    readings.append(
        glucose_reading(
            gl,
            _at(1, 10),
            99,
            mantissa=250,
            exponent=-5,
            unit="kg/L",
            sample_type="control_solution",
            sample_location="control_solution",
            type_location=0x4A,
        )
    )
    return readings


async def _store_shuffled(
    pool: db.Pool, readings: list, seed: int, gateway: str = "gw-sum"
) -> None:
    """Store ``readings`` in a random order, in batches of several messages, each message sent
    twice, and some readings again with another clock correction (another measured_at)."""
    rng = random.Random(seed)
    readings = list(readings)
    rng.shuffle(readings)
    resent = [
        r.model_copy(update={"measured_at": r.measured_at + timedelta(seconds=90)})
        for r in readings[:3]
    ]
    messages = [message(gateway, *readings[i : i + 3]) for i in range(0, len(readings), 3)]
    messages += [message(gateway, r) for r in resent]
    items = [batch_store.Incoming(topic=TOPIC, payload=b"", message=m) for m in messages]
    items = items + items  # every message delivered twice
    rng.shuffle(items)
    for i in range(0, len(items), 4):
        async with db.connection(pool) as conn:
            await batch_store.store_batch(conn, items[i : i + 4])


async def test_blood_pressure_days_match_the_readings(pool: db.Pool, database_url: str) -> None:
    cuff = device(unique("SN"))
    patient_id = await _patient(pool, cuff)
    history = _bp_history(cuff)
    await _store_shuffled(pool, history, seed=1)
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(len(history),)]  # the re-sent readings are duplicates, not new rows
    expected = expected_bp_daily(database_url, patient_id, "UTC")
    assert_same(stored_daily(database_url, "bp_daily", patient_id), expected)
    # Spot checks against hand-made numbers (day 0: morning 131/84 and 127/82, evening 142/91).
    day0 = expected[DAY]
    assert (day0["readings"], day0["usable_readings"], day0["morning_readings"]) == (5, 5, 2)
    assert (day0["morning_systolic_mmhg"], day0["evening_diastolic_mmhg"]) == (129.0, 91.0)
    assert expected[DAY + timedelta(days=1)]["usable_readings"] == 5  # 320 and failed left out
    async with db.connection(pool) as conn:
        rows = await summaries.daily_blood_pressure(conn, patient_id, since=DAY + timedelta(days=1))
    assert [r.day_start for r in rows] == [DAY + timedelta(days=1), DAY + timedelta(days=2)]
    assert rows[0].morning_readings == 2 and rows[1].evening_readings == 2


async def test_glucose_days_match_the_readings(pool: db.Pool, database_url: str) -> None:
    gl = meter(unique("SN"))
    patient_id = await _patient(pool, gl)
    await _store_shuffled(pool, _glucose_history(gl), seed=2)
    expected = expected_glucose_daily(database_url, patient_id, "UTC")
    assert_same(stored_daily(database_url, "glucose_daily", patient_id), expected)
    day0, day1, day2 = (expected[DAY + timedelta(days=d)] for d in range(3))
    assert (day0["below_3_0"], day0["from_3_0_below_3_9"], day0["in_range_3_9_to_10_0"]) == (
        1,
        1,
        2,
    )
    assert (day1["readings"], day1["in_range_3_9_to_10_0"], day1["above_10_0_to_13_9"]) == (4, 1, 2)
    assert day1["above_13_9"] == 1  # 14.0; the control solution is not a reading of the patient
    assert (day2["readings"], day2["usable_readings"]) == (3, 1)  # 45.0 implausible, HI no value
    async with db.connection(pool) as conn:
        [first, *_] = await summaries.daily_glucose(conn, patient_id)
    assert first.cv_percent == pytest.approx(100 * first.sd_mmol_per_l / first.mean_mmol_per_l)


async def test_concurrent_batches_for_one_patient_day_add_up(
    pool: db.Pool, database_url: str
) -> None:
    cuff = device(unique("SN"))
    patient_id = await _patient(pool, cuff)
    readings = [bp_reading(cuff, _at(0, 6, m), 120 + m, 80) for m in range(40)]

    async def one(part: list[wire.BloodPressureReading]) -> None:
        items = [
            batch_store.Incoming(topic=TOPIC, payload=b"", message=message("gw-sum", r))
            for r in part
        ]
        async with db.connection(pool) as conn:
            await batch_store.store_batch(conn, items)

    await asyncio.gather(*(one(readings[i::4]) for i in range(4)))
    [row] = stored_daily(database_url, "bp_daily", patient_id).values()
    assert (row["readings"], row["morning_readings"]) == (40, 40)
    assert row["mean_systolic_mmhg"] == pytest.approx(120 + 39 / 2)


async def test_rebuild_gives_what_the_ingest_path_kept(pool: db.Pool, database_url: str) -> None:
    cuff, gl = device(unique("SN")), meter(unique("SN"))
    patient_id = await _patient(pool, cuff, gl)
    await _store_shuffled(pool, _bp_history(cuff) + _glucose_history(gl), seed=3)
    before = (
        stored_daily(database_url, "bp_daily", patient_id),
        stored_daily(database_url, "glucose_daily", patient_id),
    )
    query(database_url, "SELECT homewatch_rebuild_daily()")
    after = (
        stored_daily(database_url, "bp_daily", patient_id),
        stored_daily(database_url, "glucose_daily", patient_id),
    )
    assert_same(after[0], before[0])
    assert_same(after[1], before[1])


# --- a deployment in another time zone ----------------------------------------------------------

ZONE = "Asia/Vladivostok"  # UTC+10, no daylight saving


@pytest.fixture(scope="module")
def zoned_database(postgres_server: str) -> Iterator[str]:
    """A database migrated with homewatch.summary_timezone set, as an operator would."""
    name = f"hwtest_zone_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET homewatch.summary_timezone = {}").format(
                sql.Identifier(name), sql.Literal(ZONE)
            )
        )
    url = database_url_for(name, postgres_server)
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


async def test_days_and_mornings_are_those_of_the_summary_time_zone(zoned_database: str) -> None:
    assert query(zoned_database, "SELECT summary_timezone FROM storage_settings") == [(ZONE,)]
    pool = db.create_pool(zoned_database, min_size=1, max_size=2)
    await db.open_pool(pool, timeout=10)
    try:
        cuff = device(unique("SN"))
        patient_id = await _patient(pool, cuff)
        # 21:30 UTC is 07:30 the next day in Vladivostok: a morning reading of the next day.
        readings = [
            bp_reading(cuff, _at(0, 21, 30), 130, 85),
            bp_reading(cuff, _at(1, 9), 140, 90),  # 19:00 local: evening of that same local day
            bp_reading(cuff, _at(1, 13, 30), 125, 80),  # 23:30 local
        ]
        await _store_shuffled(pool, readings, seed=4)
    finally:
        await pool.close()
    stored = stored_daily(zoned_database, "bp_daily", patient_id)
    assert_same(stored, expected_bp_daily(zoned_database, patient_id, ZONE))
    [(day, row)] = stored.items()
    assert day == datetime(DAY.year, DAY.month, DAY.day, 14, tzinfo=UTC) + timedelta(days=0)
    assert (row["morning_readings"], row["evening_readings"]) == (1, 2)
