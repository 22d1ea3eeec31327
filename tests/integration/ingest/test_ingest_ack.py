"""Acknowledge only after commit: while the database fails nothing is acknowledged, and the
broker's redelivery is stored exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import sql

from homewatch import wire
from homewatch.embedded.broker import BrokerEndpoint
from ingest_server import db, store
from ingest_server.consumer import Consumer
from ingest_server.settings import IngestSettings
from tests.fixtures.postgres import database_url_for
from tests.integration.ingest.ingest_support import (
    bp_reading,
    device,
    message,
    minutes_ago,
    publish,
    query,
    subscribed,
    unique,
    wait_until,
)


@pytest.fixture
def missing_database(postgres_server: str) -> str:
    """The URL of a database that does not exist (yet): connecting to it fails."""
    return database_url_for(f"hwtest_missing_{uuid.uuid4().hex[:12]}", postgres_server)


@pytest.fixture
async def unreachable_pool(missing_database: str) -> AsyncIterator[db.Pool]:
    pool = db.create_pool(missing_database, min_size=1, max_size=2, timeout=0.5)
    await pool.open()  # does not wait: the database fails later, when the consumer needs it
    try:
        yield pool
    finally:
        await pool.close()


async def _crisis_payload(pool: db.Pool) -> tuple[str, wire.ReadingsMessage]:
    patient_id, cuff = unique("patient"), device(unique("SN"))
    async with db.connection(pool) as conn:
        await store.create_patient(conn, patient_id, "Ack Test")
        await store.bind_device(conn, cuff.device_key, patient_id, minutes_ago(600))
    return patient_id, message("gw-ack", bp_reading(cuff, minutes_ago(1), 205, 118))


async def test_unacknowledged_message_is_redelivered_after_restart_and_stored_once(
    settings: IngestSettings,
    pool: db.Pool,
    unreachable_pool: db.Pool,
    mqtt_broker: BrokerEndpoint,
    database_url: str,
) -> None:
    patient_id, msg = await _crisis_payload(pool)
    topic = wire.readings_topic("gw-ack", settings.topic_root)

    # 1. The database fails: the consumer retries, never acknowledges.
    async with Consumer(settings, unreachable_pool) as failing:
        await subscribed(failing)
        await publish(mqtt_broker.host, mqtt_broker.port, topic, msg.to_bytes())
        await wait_until(
            lambda: failing.stats.errors >= 3, what="retries against the failing database"
        )
        assert (failing.stats.received, failing.stats.acked, failing.stats.stored) == (1, 0, 0)
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(0,)]

    # 2. Same client id (same persistent session), working database: the broker redelivers.
    async with Consumer(settings, pool) as recovered:
        await wait_until(
            lambda: recovered.stats.acked == 1, what="the redelivered message acknowledged"
        )
        assert (recovered.stats.stored, recovered.stats.alerts_raised) == (1, 1)
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(1,)]
    assert query(
        database_url, "SELECT occurrences FROM alerts WHERE patient_id = %s", (patient_id,)
    ) == [(1,)]

    # 3. It was acknowledged: a third start of the same session gets nothing again.
    async with Consumer(settings, pool) as third:
        await subscribed(third)
        await asyncio.sleep(1.0)
        assert third.stats.received == 0


async def test_message_is_stored_when_the_database_comes_back(
    settings: IngestSettings,
    unreachable_pool: db.Pool,
    missing_database: str,
    postgres_server: str,
    postgres_template: str,
    mqtt_broker: BrokerEndpoint,
) -> None:
    name = psycopg.conninfo.conninfo_to_dict(missing_database)["dbname"]
    async with Consumer(settings, unreachable_pool) as consumer:
        await subscribed(consumer)
        stray = message("gw-back", bp_reading(device(unique("SN")), minutes_ago(1), 120, 80))
        await publish(
            mqtt_broker.host,
            mqtt_broker.port,
            wire.readings_topic("gw-back", settings.topic_root),
            stray.to_bytes(),
        )
        await wait_until(
            lambda: consumer.stats.errors >= 2, what="retries against the missing database"
        )
        assert consumer.stats.acked == 0
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(postgres_template)
                )
            )
        try:
            await wait_until(
                lambda: consumer.stats.acked == 1,
                seconds=30,
                what="the message stored once the database is back",
            )
            assert (
                consumer.stats.quarantined == 1
            )  # its device is bound to nobody in the new database
            assert query(missing_database, "SELECT reason FROM quarantine") == [("unbound device",)]
        finally:
            await unreachable_pool.close()
            with psycopg.connect(postgres_server, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


async def test_lost_connections_are_replaced(
    settings: IngestSettings, pool: db.Pool, mqtt_broker: BrokerEndpoint, database_url: str
) -> None:
    patient_id, msg = await _crisis_payload(pool)
    name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    async with Consumer(settings, pool) as consumer:
        await subscribed(consumer)
        # Kill every server process of this database: the pool's connections are now dead.
        killed = query(
            database_url,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        assert killed[0][0] >= 1
        await publish(
            mqtt_broker.host,
            mqtt_broker.port,
            wire.readings_topic("gw-ack", settings.topic_root),
            msg.to_bytes(),
        )
        await wait_until(
            lambda: consumer.stats.acked == 1,
            seconds=20,
            what="the message stored on a new connection",
        )
    assert query(
        database_url, "SELECT count(*) FROM bp_readings WHERE patient_id = %s", (patient_id,)
    ) == [(1,)]
