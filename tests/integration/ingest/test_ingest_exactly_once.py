"""Exactly once: every reading is stored once however often, however concurrently, and with
whatever clock correction it arrives; alerts evolve the same whether messages come one by one or
many in one batch."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from homewatch import wire
from homewatch.embedded.broker import BrokerEndpoint
from ingest_server import batch_store, db, store
from ingest_server.consumer import Consumer
from ingest_server.results import StoreResult
from ingest_server.settings import IngestSettings
from tests.integration.ingest.ingest_support import (
    bp_reading,
    glucose_reading,
    message,
    meter,
    minutes_ago,
    query,
    subscribed,
    unique,
    wait_until,
)
from tests.integration.ingest.scale_support import bound_devices, publish_many_async

TOPIC = "t/gateways/gw-once/readings"


def _item(msg: wire.ReadingsMessage) -> batch_store.Incoming:
    return batch_store.Incoming(topic=TOPIC, payload=msg.to_bytes(), message=msg)


def _recorrected(reading: wire.Reading, seconds: float) -> wire.Reading:
    """The same record sent again after the gateway changed its clock correction."""
    return reading.model_copy(
        update={"measured_at": reading.measured_at + timedelta(seconds=seconds)}
    )


def _rows(database_url: str, reading: wire.Reading, table: str = "bp_readings") -> list[tuple]:
    return query(
        database_url,
        f"SELECT measured_at FROM {table} WHERE reading_id = %s",
        (reading.reading_id,),
    )


async def test_a_reading_sent_again_with_another_measured_at_is_a_duplicate(
    pool: db.Pool, database_url: str
) -> None:
    [(_, cuff)] = await bound_devices(pool, 1)
    gl = meter(unique("SN"))
    async with db.connection(pool) as conn:
        [binding] = await store.device_bindings(conn, cuff.device_key)
        await store.bind_device(conn, gl.device_key, binding.patient_id, minutes_ago(600))
    first = bp_reading(cuff, minutes_ago(30), 128, 82)
    glucose = glucose_reading(gl, minutes_ago(40), 9, mantissa=60, exponent=-4, unit="mol/L")
    async with db.connection(pool) as conn:
        stored = await store.store_message(conn, message("gw-once", first, glucose), TOPIC)
        # Later, in another message, corrected differently: the same readings.
        later = await store.store_message(
            conn,
            message("gw-once", _recorrected(first, 150), _recorrected(glucose, -75)),
            TOPIC,
        )
        # Twice in one message, with two corrections: stored once, the first copy wins.
        twice = bp_reading(cuff, minutes_ago(20), 129, 83)
        both = await store.store_message(
            conn, message("gw-once", twice, _recorrected(twice, 30)), TOPIC
        )
    assert (stored.stored, later.stored, later.duplicates, later.duplicates_glucose) == (2, 0, 2, 1)
    assert (both.stored, both.duplicates) == (1, 1)
    assert _rows(database_url, first) == [(first.measured_at,)]
    assert _rows(database_url, glucose, "glucose_readings") == [(glucose.measured_at,)]
    assert _rows(database_url, twice) == [(twice.measured_at,)]


async def test_concurrent_batches_store_each_reading_once(pool: db.Pool, database_url: str) -> None:
    devices = [c for _, c in await bound_devices(pool, 5)]
    readings = [
        bp_reading(devices[i % 5], minutes_ago(300 - i), 120 + i % 40, 80) for i in range(200)
    ]
    rng = random.Random(7)
    batches = []
    for _ in range(6):  # six workers, each with most readings, some re-corrected, in any order
        chosen = rng.sample(readings, 150)
        variants = [_recorrected(r, rng.choice([0, 0, 45, -45])) for r in chosen]
        msgs = [message("gw-once", *variants[i : i + 5]) for i in range(0, len(variants), 5)]
        batches.append([_item(m) for m in msgs])

    async def store_one(items: list[batch_store.Incoming]) -> list[StoreResult]:
        async with db.connection(pool) as conn:
            return await batch_store.store_batch(conn, items)

    results = [r for rs in await asyncio.gather(*(store_one(b) for b in batches)) for r in rs]
    distinct = {r.reading_id for b in batches for i in b for r in i.message.readings}  # type: ignore[union-attr]
    assert sum(r.stored for r in results) == len(distinct)
    assert sum(r.stored + r.duplicates for r in results) == 6 * 150
    rows = query(
        database_url,
        "SELECT count(*), count(DISTINCT reading_id) FROM bp_readings WHERE device_key = ANY(%s)",
        ([d.device_key for d in devices],),
    )
    assert rows == [(len(distinct), len(distinct))]
    registered = query(
        database_url,
        "SELECT count(*) FROM reading_ids r JOIN bp_readings b USING (reading_id, measured_at)"
        " WHERE b.device_key = ANY(%s)",
        ([d.device_key for d in devices],),
    )
    assert registered == [(len(distinct),)]  # and each row is the registered copy


async def test_two_consumers_on_one_shared_subscription_store_each_reading_once(
    settings: IngestSettings, pool: db.Pool, mqtt_broker: BrokerEndpoint, database_url: str
) -> None:
    devices = [c for _, c in await bound_devices(pool, 4)]
    readings = [bp_reading(devices[i % 4], minutes_ago(900 - i), 125, 81) for i in range(300)]
    topic = wire.readings_topic("gw-two", settings.topic_root)
    payloads = [message("gw-two", r).to_bytes() for r in readings]
    resent = [message("gw-two", _recorrected(r, 60)).to_bytes() for r in readings[::6]]
    messages = [(topic, p) for p in payloads + payloads + resent]  # each at least twice
    random.Random(3).shuffle(messages)
    other = settings.model_copy(update={"client_id": unique("hwtest-ingest")})
    async with Consumer(settings, pool) as one, Consumer(other, pool) as two:
        await subscribed(one)
        await subscribed(two)
        await publish_many_async(mqtt_broker.host, mqtt_broker.port, messages)
        await wait_until(
            lambda: one.stats.acked + two.stats.acked == len(messages),
            seconds=60,
            what="every message acknowledged",
        )
        assert one.stats.received > 0 and two.stats.received > 0  # both took a share
        assert one.stats.stored + two.stats.stored == len(readings)
        assert one.stats.duplicates + two.stats.duplicates == len(messages) - len(readings)
    assert query(
        database_url,
        "SELECT count(*), count(DISTINCT reading_id) FROM bp_readings WHERE device_key = ANY(%s)",
        ([d.device_key for d in devices],),
    ) == [(len(readings), len(readings))]


async def test_a_crisis_and_its_confirmation_in_one_batch_go_through_the_same_states(
    pool: db.Pool, database_url: str
) -> None:
    """As in the demo: HIGH on the first reading, URGENT on the re-measurement five minutes later,
    two occurrences, whether the two messages come in one batch or in two."""
    [(patient_id, cuff)] = await bound_devices(pool, 1)
    first = bp_reading(cuff, minutes_ago(20), 196, 124)
    second = bp_reading(cuff, minutes_ago(15), 194, 122)
    async with db.connection(pool) as conn:
        results = await batch_store.store_batch(
            conn, [_item(message("gw-once", first)), _item(message("gw-once", second))]
        )
    assert [(a.raised, a.severity, a.occurrences) for r in results for a in r.alerts] == [
        (True, "high", 1),
        (False, "urgent", 2),
    ]
    [(severity, occurrences, evidence)] = query(
        database_url,
        "SELECT severity, occurrences, evidence FROM alerts WHERE patient_id = %s",
        (patient_id,),
    )
    assert (severity, occurrences) == ("urgent", 2)
    assert evidence["reading_ids"] == [str(first.reading_id), str(second.reading_id)]


async def test_a_late_reading_in_a_batch_is_evaluated_in_its_own_time(
    pool: db.Pool, database_url: str
) -> None:
    [(patient_id, cuff)] = await bound_devices(pool, 1)
    today = bp_reading(cuff, minutes_ago(5), 125, 80)
    late = bp_reading(cuff, minutes_ago(3 * 24 * 60), 192, 110)  # a backlog from three days ago
    late_confirmation = bp_reading(cuff, minutes_ago(3 * 24 * 60 - 6), 188, 112)
    async with db.connection(pool) as conn:
        results = await batch_store.store_batch(
            conn,
            [
                _item(message("gw-once", today)),
                _item(message("gw-once", late_confirmation, late)),  # out of order, too
            ],
        )
    assert [len(r.alerts) for r in results] == [0, 1]
    [alert] = results[1].alerts
    assert (alert.severity, alert.occurrences) == ("urgent", 1)
    assert alert.reading_ids == (str(late.reading_id), str(late_confirmation.reading_id))
    assert query(
        database_url, "SELECT last_seen_at FROM alerts WHERE patient_id = %s", (patient_id,)
    ) == [(late_confirmation.measured_at,)]
