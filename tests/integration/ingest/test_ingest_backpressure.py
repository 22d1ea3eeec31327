"""Back-pressure: a slow or unreachable database stops the consumer taking messages (at most
``receive_maximum`` held, none acknowledged), and when it is back everything is stored once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import psycopg
import pytest

from homewatch import wire
from homewatch.embedded.broker import BrokerEndpoint
from ingest_server import db
from ingest_server.consumer import Consumer
from ingest_server.inbox import Inbox, InboxClosed
from ingest_server.settings import IngestSettings
from tests.integration.ingest.ingest_support import (
    bp_reading,
    message,
    minutes_ago,
    query,
    subscribed,
    wait_until,
)
from tests.integration.ingest.scale_support import (
    TcpProxy,
    bound_devices,
    publish_many_async,
    via_proxy,
)

HELD = 20


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    parts = psycopg.conninfo.conninfo_to_dict(database_url)
    proxy = TcpProxy(str(parts.get("host", "127.0.0.1")), int(parts.get("port", 5432)))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


def _messages(
    settings: IngestSettings, cuffs: list, n: int, gateway: str
) -> list[tuple[str, bytes]]:
    topic = wire.readings_topic(gateway, settings.topic_root)
    return [
        (
            topic,
            message(
                gateway, bp_reading(cuffs[i % len(cuffs)], minutes_ago(i + 1), 121, 79)
            ).to_bytes(),
        )
        for i in range(n)
    ]


def _stored(database_url: str, cuffs: list) -> int:
    return query(
        database_url,
        "SELECT count(*) FROM bp_readings WHERE device_key = ANY(%s)",
        ([c.device_key for c in cuffs],),
    )[0][0]


async def test_database_down_stops_intake_and_everything_is_stored_when_it_is_back(
    settings: IngestSettings,
    proxy: TcpProxy,
    pool: db.Pool,
    mqtt_broker: BrokerEndpoint,
    database_url: str,
) -> None:
    cuffs = [c for _, c in await bound_devices(pool, 3)]
    own = settings.model_copy(
        update={"receive_maximum": HELD, "batch_max_messages": 5, "db_retry_max_s": 0.2}
    )
    proxied = db.create_pool(via_proxy(database_url, proxy), min_size=1, max_size=2, timeout=0.5)
    await db.open_pool(proxied, timeout=5)
    try:
        async with Consumer(own, proxied) as consumer:
            await subscribed(consumer)
            await proxy.stop()  # the database host is gone: connections cut, new ones refused
            messages = _messages(own, cuffs, 150, "gw-bp")
            await publish_many_async(mqtt_broker.host, mqtt_broker.port, messages)
            await wait_until(lambda: consumer.held == HELD, what=f"{HELD} messages held")
            await wait_until(lambda: consumer.stats.errors >= 3, what="retries")
            await asyncio.sleep(1.0)  # the broker sends nothing more, we take nothing more
            assert (consumer.held, consumer.peak_held, consumer.stats.acked) == (HELD, HELD, 0)
            assert _stored(database_url, cuffs) == 0

            await proxy.start()  # back, same address
            await wait_until(
                lambda: consumer.stats.acked == len(messages),
                seconds=60,
                what="every message stored and acknowledged",
            )
            assert consumer.peak_held <= HELD
            assert consumer.stats.stored == len(messages)
    finally:
        await proxied.close()
    assert _stored(database_url, cuffs) == len(messages)


async def test_slow_database_bounds_what_is_held_while_acknowledgements_flow(
    settings: IngestSettings, pool: db.Pool, mqtt_broker: BrokerEndpoint, database_url: str
) -> None:
    """Mosquitto 2.0 sends a further Receive Maximum window for each PUBACK (ingest_server.inbox):
    with the database stalling between batches, only the consumer's own bound holds."""
    cuffs = [c for _, c in await bound_devices(pool, 3)]
    own = settings.model_copy(update={"receive_maximum": HELD, "batch_max_messages": 4})
    stop = threading.Event()

    def stall() -> None:  # lock the id registry for 300 ms out of every 400
        with psycopg.connect(database_url, autocommit=True) as conn:
            while not stop.is_set():
                with conn.transaction():
                    conn.execute("LOCK TABLE reading_ids IN EXCLUSIVE MODE")
                    time.sleep(0.3)
                time.sleep(0.1)

    staller = threading.Thread(target=stall, daemon=True)
    async with Consumer(own, pool) as consumer:
        await subscribed(consumer)
        staller.start()
        try:
            messages = _messages(own, cuffs, 200, "gw-slow")
            await publish_many_async(mqtt_broker.host, mqtt_broker.port, messages)
            await wait_until(
                lambda: consumer.stats.acked == len(messages), seconds=90, what="all stored"
            )
        finally:
            stop.set()
            await asyncio.to_thread(staller.join, 5)
        assert consumer.peak_held <= HELD
        assert consumer._subscriber.inbox.waits > 0  # the bound was reached and held
    assert _stored(database_url, cuffs) == len(messages)


# --- the inbox itself -------------------------------------------------------------------------


async def test_inbox_blocks_the_producer_until_a_slot_is_given_back() -> None:
    inbox: Inbox[int] = Inbox(capacity=2)
    inbox.bind(asyncio.get_running_loop())
    put_done = threading.Event()

    def produce() -> None:
        for n in range(3):
            inbox.put(n)
        put_done.set()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    await wait_until(lambda: inbox.queued == 2, what="two items handed over")
    assert await inbox.take(10) == [0, 1]
    await asyncio.sleep(0.2)
    assert not put_done.is_set()  # both slots held: the third put waits
    inbox.done()
    await asyncio.to_thread(producer.join, 5)
    assert put_done.is_set()
    assert await inbox.take(10) == [2]
    assert (inbox.held, inbox.peak_held, inbox.waits) == (2, 2, 1)
    assert await inbox.take(10, timeout=0.05) == []
    inbox.done()
    inbox.done()
    assert inbox.held == 0
    with pytest.raises(RuntimeError):
        inbox.done()


async def test_inbox_bounds_the_bytes_held_too() -> None:
    inbox: Inbox[int] = Inbox(capacity=100, max_bytes=1000)
    inbox.bind(asyncio.get_running_loop())
    inbox.put(1, 5000)  # larger than the budget: it fits alone
    second_in = threading.Event()

    def produce() -> None:
        inbox.put(2, 10)
        second_in.set()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    await asyncio.sleep(0.2)
    assert not second_in.is_set() and inbox.held_bytes == 5000
    assert await inbox.take(10) == [1]
    inbox.done(5000)
    await asyncio.to_thread(producer.join, 5)
    assert second_in.is_set() and (inbox.held, inbox.held_bytes) == (1, 10)


async def test_closing_the_inbox_releases_a_blocked_producer() -> None:
    inbox: Inbox[int] = Inbox(capacity=1)
    inbox.bind(asyncio.get_running_loop())
    inbox.put(1)
    outcome: list[str] = []

    def produce() -> None:
        try:
            inbox.put(2)
        except InboxClosed:
            outcome.append("closed")

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    await asyncio.sleep(0.1)
    inbox.close()
    await asyncio.to_thread(producer.join, 5)
    assert outcome == ["closed"]
