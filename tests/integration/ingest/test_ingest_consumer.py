"""The consumer on a real Mosquitto: validate, store, quarantine, keep going."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from homewatch import wire
from homewatch.embedded.broker import BrokerEndpoint, Mosquitto
from ingest_server import db, store
from ingest_server.consumer import Consumer
from ingest_server.settings import IngestSettings
from ingest_server.store import StoreResult
from tests.integration.ingest.ingest_support import (
    bp_reading,
    device,
    glucose_reading,
    message,
    meter,
    minutes_ago,
    publish,
    query,
    subscribed,
    unique,
    wait_until,
)


@pytest.fixture
async def running(
    settings: IngestSettings, pool: db.Pool
) -> AsyncIterator[tuple[Consumer, list[StoreResult]]]:
    results: list[StoreResult] = []

    async def on_result(result: StoreResult) -> None:
        results.append(result)

    async with Consumer(settings, pool, on_result=on_result) as consumer:
        await subscribed(consumer)
        yield consumer, results


async def _bound_cuff(pool: db.Pool) -> tuple[str, wire.DeviceIdentity]:
    patient_id, cuff = unique("patient"), device(unique("SN"))
    async with db.connection(pool) as conn:
        await store.create_patient(conn, patient_id, "Consumer Test")
        await store.bind_device(conn, cuff.device_key, patient_id, minutes_ago(24 * 60))
    return patient_id, cuff


async def test_valid_message_is_stored_and_acknowledged(
    running: tuple[Consumer, list[StoreResult]],
    settings: IngestSettings,
    mqtt_broker: BrokerEndpoint,
    pool: db.Pool,
    database_url: str,
) -> None:
    consumer, results = running
    patient_id, cuff = await _bound_cuff(pool)
    reading = bp_reading(cuff, minutes_ago(1), 131, 84)
    await publish(
        mqtt_broker.host,
        mqtt_broker.port,
        wire.readings_topic("gw-a", settings.topic_root),
        message("gw-a", reading).to_bytes(),
    )
    await wait_until(lambda: consumer.stats.acked == 1, what="one acknowledged message")
    assert [(r.stored, r.alerts) for r in results] == [(1, ())]
    assert query(
        database_url,
        "SELECT patient_id FROM bp_readings WHERE reading_id = %s",
        (reading.reading_id,),
    ) == [(patient_id,)]
    assert query(
        database_url, "SELECT count(*) FROM alerts WHERE patient_id = %s", (patient_id,)
    ) == [(0,)]


async def test_glucose_published_on_a_gateway_topic_is_stored(
    running: tuple[Consumer, list[StoreResult]],
    settings: IngestSettings,
    mqtt_broker: BrokerEndpoint,
    pool: db.Pool,
    database_url: str,
) -> None:
    consumer, results = running
    patient_id, cuff = await _bound_cuff(pool)
    gl = meter(unique("SN"))
    async with db.connection(pool) as conn:
        await store.bind_device(conn, gl.device_key, patient_id, minutes_ago(24 * 60))
    # A meter's backlog (two records, one a control-solution test) with a cuff reading.
    backlog = [
        glucose_reading(gl, minutes_ago(180), 41, mantissa=112, exponent=-5, unit="kg/L"),
        glucose_reading(
            gl,
            minutes_ago(170),
            42,
            mantissa=250,
            exponent=-5,
            unit="kg/L",
            sample_type="control_solution",
            sample_location="control_solution",
            type_location=0x4A,
        ),
    ]
    bp = bp_reading(cuff, minutes_ago(160), 128, 83)
    payload = message("gw-g", *backlog, bp).to_bytes()
    topic = wire.readings_topic("gw-g", settings.topic_root)
    await publish(mqtt_broker.host, mqtt_broker.port, topic, payload, payload)
    await wait_until(lambda: consumer.stats.acked == 2, what="both deliveries acknowledged")
    assert sorted((r.stored, r.stored_glucose, r.duplicates) for r in results) == [
        (0, 0, 3),
        (3, 2, 0),
    ]
    assert (consumer.stats.stored, consumer.stats.stored_glucose) == (3, 2)
    assert query(
        database_url,
        "SELECT sequence_number, mg_per_dl, control_solution, gateway_id FROM glucose_readings"
        " WHERE patient_id = %s ORDER BY sequence_number",
        (patient_id,),
    ) == [(41, 112.0, False, "gw-g"), (42, 250.0, True, "gw-g")]
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(1,)]


async def test_crisis_published_twice_is_one_reading_and_one_alert(
    running: tuple[Consumer, list[StoreResult]],
    settings: IngestSettings,
    mqtt_broker: BrokerEndpoint,
    pool: db.Pool,
    database_url: str,
) -> None:
    consumer, results = running
    patient_id, cuff = await _bound_cuff(pool)
    reading = bp_reading(cuff, minutes_ago(2), 210, 125)
    payload = message("gw-b", reading).to_bytes()
    topic = wire.readings_topic("gw-b", settings.topic_root)
    await publish(mqtt_broker.host, mqtt_broker.port, topic, payload, payload)
    await wait_until(lambda: consumer.stats.acked == 2, what="two acknowledged messages")
    assert sorted((r.stored, r.duplicates) for r in results) == [(0, 1), (1, 0)]
    assert (consumer.stats.stored, consumer.stats.duplicates, consumer.stats.alerts_raised) == (
        1,
        1,
        1,
    )
    rows = query(
        database_url,
        "SELECT severity, occurrences, evidence FROM alerts WHERE patient_id = %s",
        (patient_id,),
    )
    assert len(rows) == 1
    severity, occurrences, evidence = rows[0]
    assert (severity, occurrences) == ("high", 1)
    assert evidence["reading_ids"] == [str(reading.reading_id)]


async def test_bad_messages_are_quarantined_and_the_consumer_goes_on(
    running: tuple[Consumer, list[StoreResult]],
    settings: IngestSettings,
    mqtt_broker: BrokerEndpoint,
    pool: db.Pool,
    database_url: str,
) -> None:
    consumer, results = running
    patient_id, cuff = await _bound_cuff(pool)
    root = settings.topic_root
    valid = message("gw-c", bp_reading(cuff, minutes_ago(1), 140, 90))
    wrong_schema = json.loads(valid.to_bytes())
    wrong_schema["schema"] = "homewatch.readings/99"
    invalid_fields = json.loads(valid.to_bytes())
    invalid_fields["readings"][0]["values"]["systolic"]["unit"] = "furlongs"
    stray = message("gw-c", bp_reading(device(unique("SN-stray")), minutes_ago(1), 150, 95))
    cases = [
        (wire.readings_topic("gw-c", root), b"\x00\xffnot json at all", "malformed payload"),
        (wire.readings_topic("gw-c", root), b"[1, 2, 3]", "malformed payload"),
        (wire.readings_topic("gw-c", root), json.dumps(wrong_schema).encode(), "unknown schema"),
        (wire.readings_topic("gw-c", root), json.dumps(invalid_fields).encode(), "invalid message"),
        (wire.readings_topic("gw-other", root), valid.to_bytes(), "gateway mismatch"),
        (f"{root}/gateways//readings", valid.to_bytes(), "not a readings topic"),
        (wire.readings_topic("gw-c", root), stray.to_bytes(), "unbound device"),
    ]
    for topic, payload, _ in cases:
        await publish(mqtt_broker.host, mqtt_broker.port, topic, payload)
    await publish(
        mqtt_broker.host, mqtt_broker.port, wire.readings_topic("gw-c", root), valid.to_bytes()
    )
    await wait_until(
        lambda: consumer.stats.acked == len(cases) + 1, what="every message acknowledged"
    )

    assert sorted(r.quarantine_reason or "" for r in results if r.quarantined) == sorted(
        reason for *_, reason in cases
    )
    assert [r.stored for r in results if not r.quarantined] == [1]
    assert consumer.stats.errors == 0
    for topic, payload, reason in cases:
        if reason == "unbound device":
            continue  # kept per reading, as a one-reading message (see the store tests)
        rows = query(
            database_url,
            "SELECT reason, detail FROM quarantine WHERE topic = %s AND payload = %s",
            (topic, payload),
        )
        assert [r[0] for r in rows] == [reason], (topic, payload)
        assert rows[0][1]
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(1,)]


async def test_control_characters_in_device_text_are_quarantined(
    running: tuple[Consumer, list[StoreResult]],
    settings: IngestSettings,
    mqtt_broker: BrokerEndpoint,
    pool: db.Pool,
    database_url: str,
) -> None:
    # PostgreSQL text cannot hold a NUL character: the wire contract refuses control characters
    # in device strings, so such a message is quarantined as invalid, byte-exact.
    consumer, results = running
    _, cuff = await _bound_cuff(pool)
    nul_cuff = cuff.model_copy(update={"firmware_revision": "1.0\x00evil"})
    payload = message("gw-d", bp_reading(nul_cuff, minutes_ago(1), 120, 80)).to_bytes()
    await publish(
        mqtt_broker.host,
        mqtt_broker.port,
        wire.readings_topic("gw-d", settings.topic_root),
        payload,
    )
    await wait_until(lambda: consumer.stats.acked == 1, what="the message acknowledged")
    assert [r.quarantine_reason for r in results] == ["invalid message"]
    assert query(database_url, "SELECT reason FROM quarantine WHERE payload = %s", (payload,)) == [
        ("invalid message",)
    ]


async def test_mqtt_311_without_shared_subscription(
    settings: IngestSettings, pool: db.Pool, mqtt_broker: BrokerEndpoint, database_url: str
) -> None:
    # What the embedded amqtt fallback offers: MQTT 3.1.1, no shared subscriptions.
    settings_311 = settings.model_copy(update={"mqtt_protocol": "3.1.1", "shared_group": None})
    patient_id, cuff = await _bound_cuff(pool)
    async with Consumer(settings_311, pool) as consumer:
        assert consumer.subscription == f"{settings.topic_root}/gateways/+/readings"
        await subscribed(consumer)
        payload = message("gw-311", bp_reading(cuff, minutes_ago(1), 119, 79)).to_bytes()
        await publish(
            mqtt_broker.host,
            mqtt_broker.port,
            wire.readings_topic("gw-311", settings.topic_root),
            payload,
        )
        await wait_until(lambda: consumer.stats.acked == 1, what="the message acknowledged")
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(1,)]


async def test_two_consumers_share_the_subscription(
    settings: IngestSettings, pool: db.Pool, mqtt_broker: BrokerEndpoint, database_url: str
) -> None:
    patient_id, cuff = await _bound_cuff(pool)
    payloads = [
        message("gw-s", bp_reading(cuff, minutes_ago(60 - i), 120 + i, 80)).to_bytes()
        for i in range(12)
    ]
    other = settings.model_copy(update={"client_id": unique("hwtest-ingest")})
    async with Consumer(settings, pool) as one, Consumer(other, pool) as two:
        await subscribed(one)
        await subscribed(two)
        await publish(
            mqtt_broker.host,
            mqtt_broker.port,
            wire.readings_topic("gw-s", settings.topic_root),
            *payloads,
        )
        await wait_until(
            lambda: one.stats.acked + two.stats.acked == len(payloads),
            what="all messages acknowledged",
        )
        assert one.stats.received > 0 and two.stats.received > 0  # each got a share
        assert one.stats.stored + two.stats.stored == len(payloads)
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(len(payloads),)]


@pytest.mark.parametrize("shared_group", ["ingest", None])
async def test_messages_published_while_ingest_is_down_arrive_when_it_is_back(
    settings: IngestSettings,
    pool: db.Pool,
    mqtt_broker: BrokerEndpoint,
    database_url: str,
    shared_group: str | None,
) -> None:
    own = settings.model_copy(update={"shared_group": shared_group})
    patient_id, cuff = await _bound_cuff(pool)
    async with Consumer(own, pool) as consumer:
        await subscribed(consumer)  # the persistent session now holds the subscription
    payload = message("gw-down", bp_reading(cuff, minutes_ago(1), 122, 80)).to_bytes()
    topic = wire.readings_topic("gw-down", own.topic_root)
    await publish(mqtt_broker.host, mqtt_broker.port, topic, payload)
    async with Consumer(own, pool) as consumer:
        await wait_until(lambda: consumer.stats.acked == 1, what="the queued message")
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(1,)]


MOSQUITTO_SHARED_RESTART = (
    "Mosquitto 2.0 does not restore a persistent session's SHARED subscription after a broker "
    "restart until the client subscribes again: what is published in between is dropped"
)


@pytest.mark.parametrize(
    "shared_group",
    [pytest.param("ingest", marks=pytest.mark.xfail(reason=MOSQUITTO_SHARED_RESTART)), None],
)
async def test_consumer_reconnects_after_a_broker_restart(
    private_mosquitto: Mosquitto,
    settings: IngestSettings,
    pool: db.Pool,
    database_url: str,
    shared_group: str | None,
) -> None:
    endpoint = private_mosquitto.start()
    # Reconnect late enough that the message below is published before we are back.
    own = settings.model_copy(
        update={"mqtt_url": endpoint.url, "shared_group": shared_group, "reconnect_min_delay_s": 3}
    )
    patient_id, cuff = await _bound_cuff(pool)
    topic = wire.readings_topic("gw-r", own.topic_root)
    async with Consumer(own, pool) as consumer:
        await subscribed(consumer)
        private_mosquitto.stop()
        private_mosquitto.start()
        # Published while the consumer may still be reconnecting: the session queues it.
        payload = message("gw-r", bp_reading(cuff, minutes_ago(1), 124, 81)).to_bytes()
        await publish(endpoint.host, endpoint.port, topic, payload)
        await wait_until(lambda: consumer.stats.acked == 1, seconds=10, what="stored after restart")
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(1,)]
