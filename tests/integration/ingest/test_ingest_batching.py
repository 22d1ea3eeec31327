"""The consumer stores many messages per transaction, and one bad message never costs the others:
a batch the database refuses, or that trips a defect, is stored message by message and only the
culprit is quarantined; quarantined input never stops the consumer."""

from __future__ import annotations

import json
import random

import pytest

from homewatch import wire
from homewatch.embedded.broker import BrokerEndpoint
from ingest_server import batch_store, db, store
from ingest_server.consumer import Consumer
from ingest_server.results import StoreResult
from ingest_server.settings import IngestSettings
from tests.integration.ingest.ingest_support import (
    GLUCOSE_CONTEXT,
    RAW_GLUCOSE_CONTEXT,
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


async def _consume(
    settings: IngestSettings,
    pool: db.Pool,
    broker: BrokerEndpoint,
    messages: list[tuple[str, bytes]],
) -> tuple[Consumer, list[StoreResult]]:
    results: list[StoreResult] = []

    async def on_result(result: StoreResult) -> None:
        results.append(result)

    async with Consumer(settings, pool, on_result=on_result) as consumer:
        await subscribed(consumer)
        await publish_many_async(broker.host, broker.port, messages)
        await wait_until(
            lambda: consumer.stats.acked == len(messages),
            seconds=60,
            what="every message acknowledged",
        )
    return consumer, results


async def test_many_messages_share_a_transaction(
    settings: IngestSettings, pool: db.Pool, mqtt_broker: BrokerEndpoint, database_url: str
) -> None:
    cuffs = [c for _, c in await bound_devices(pool, 10)]
    topic = wire.readings_topic("gw-batch", settings.topic_root)
    messages = [
        (
            topic,
            message(
                "gw-batch", bp_reading(cuffs[i % 10], minutes_ago(500 - i), 120, 80)
            ).to_bytes(),
        )
        for i in range(400)
    ]
    slow = settings.model_copy(update={"batch_max_delay_s": 0.05})
    consumer, results = await _consume(slow, pool, mqtt_broker, messages)
    assert consumer.stats.stored == 400
    assert consumer.stats.batches < 400 / 5  # well under one transaction per message
    assert sorted(r.stored for r in results) == [1] * 400


async def test_a_message_the_database_refuses_is_quarantined_alone(
    settings: IngestSettings, pool: db.Pool, mqtt_broker: BrokerEndpoint, database_url: str
) -> None:
    """JSON has no NaN, but the wire parser accepts the token in a glucose context, and jsonb
    refuses it: the whole batch fails in the database, then its messages go one by one."""
    [(patient_id, cuff)] = await bound_devices(pool, 1)
    gl = meter(unique("SN"))
    async with db.connection(pool) as conn:
        await store.bind_device(conn, gl.device_key, patient_id, minutes_ago(3000))
    topic = wire.readings_topic("gw-nan", settings.topic_root)
    poisoned = glucose_reading(
        gl,
        minutes_ago(100),
        3,
        mantissa=55,
        exponent=-4,
        unit="mol/L",
        context=GLUCOSE_CONTEXT,
        raw_context=RAW_GLUCOSE_CONTEXT,
    )
    document = json.loads(message("gw-nan", poisoned).to_bytes())
    document["readings"][0]["context"]["carbohydrate_grams"] = "__NAN__"
    bad = json.dumps(document).replace('"__NAN__"', "NaN").encode()
    good = [
        message("gw-nan", bp_reading(cuff, minutes_ago(90 - i), 120 + i, 80)).to_bytes()
        for i in range(12)
    ]
    messages = [(topic, p) for p in [*good[:6], bad, *good[6:]]]
    big = settings.model_copy(update={"batch_max_delay_s": 0.2, "workers": 1})
    consumer, results = await _consume(big, pool, mqtt_broker, messages)
    assert consumer.stats.split_batches >= 1
    assert consumer.stats.stored == 12
    assert [r.quarantine_reason for r in results if r.quarantined] == ["rejected by database"]
    [(reason, detail)] = query(
        database_url, "SELECT reason, detail FROM quarantine WHERE payload = %s", (bad,)
    )
    assert reason == "rejected by database" and "json" in detail.lower()
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(12,)]


async def test_a_defect_on_one_message_quarantines_that_message_only(
    settings: IngestSettings,
    pool: db.Pool,
    mqtt_broker: BrokerEndpoint,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [(patient_id, cuff)] = await bound_devices(pool, 1)
    topic = wire.readings_topic("gw-bug", settings.topic_root)
    cursed = bp_reading(cuff, minutes_ago(50), 133, 88)
    original = batch_store.impossible_value

    def buggy(reading: wire.Reading) -> str | None:
        if reading.reading_id == cursed.reading_id:
            raise ZeroDivisionError("a defect of ours")
        return original(reading)

    monkeypatch.setattr(batch_store, "impossible_value", buggy)
    others = [bp_reading(cuff, minutes_ago(40 - i), 120, 80) for i in range(8)]
    payloads = [message("gw-bug", r).to_bytes() for r in others[:4]]
    payloads += [message("gw-bug", cursed).to_bytes()]
    payloads += [message("gw-bug", r).to_bytes() for r in others[4:]]
    big = settings.model_copy(update={"batch_max_delay_s": 0.2, "workers": 1})
    consumer, results = await _consume(big, pool, mqtt_broker, [(topic, p) for p in payloads])
    assert consumer.stats.stored == 8
    assert [r.quarantine_reason for r in results if r.quarantined] == ["processing failed"]
    assert (
        "ZeroDivisionError" in results[[r.quarantined for r in results].index(1)].quarantine_detail
    )
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(8,)]


async def test_quarantined_input_never_stops_the_consumer(
    settings: IngestSettings, pool: db.Pool, mqtt_broker: BrokerEndpoint, database_url: str
) -> None:
    cuffs = [c for _, c in await bound_devices(pool, 5)]
    root = settings.topic_root
    good = [
        (
            wire.readings_topic(f"gw-mix{i % 3}", root),
            message(
                f"gw-mix{i % 3}", bp_reading(cuffs[i % 5], minutes_ago(700 - i), 122, 81)
            ).to_bytes(),
        )
        for i in range(150)
    ]
    stray = message(
        "gw-mix0",
        bp_reading(wire.DeviceIdentity(address="FF:00:00:00:00:01"), minutes_ago(1), 120, 80),
    )
    impossible = message("gw-mix1", bp_reading(cuffs[0], minutes_ago(2), 999, 80))
    garbage = [
        (wire.readings_topic("gw-mix0", root), b"\xff\xfe garbage"),
        (wire.readings_topic("gw-mix1", root), b'{"schema": "homewatch.readings/7"}'),
        (wire.readings_topic("gw-mix2", root), b"[]"),
        (wire.readings_topic("gw-other", root), good[0][1]),  # another gateway's message
        (f"{root}/gateways//readings", good[1][1]),  # not a readings topic (no gateway)
        (wire.readings_topic("gw-mix0", root), stray.to_bytes()),  # unbound device
        (wire.readings_topic("gw-mix1", root), impossible.to_bytes()),  # impossible value
    ] * 20
    messages = good + garbage
    random.Random(5).shuffle(messages)
    consumer, results = await _consume(settings, pool, mqtt_broker, messages)
    assert consumer.stats.stored == 150
    assert consumer.stats.errors == 0  # bad input is data, not a failure
    reasons = sorted({r.quarantine_reason for r in results if r.quarantined})
    assert reasons == [
        "gateway mismatch",
        "impossible value",
        "malformed payload",
        "not a readings topic",
        "unbound device",
        "unknown schema",
    ]
    assert query(
        database_url,
        "SELECT count(*) FROM bp_readings WHERE device_key = ANY(%s)",
        ([c.device_key for c in cuffs],),
    ) == [(150,)]
