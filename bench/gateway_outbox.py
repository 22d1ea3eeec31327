"""The gateway's outbox: readings/s durably enqueued and delivered, and disk bytes per reading.

Baselines, measured in the same run on the same disk and broker:

* enqueue: a bare SQLite INSERT of the same JSON in WAL mode with synchronous=FULL, one commit
  per reading (the fsync floor every durable write pays), and the same in batches;
* delivery: the same batches published by the same MQTT client, stop-and-wait, without reading
  and deleting them from the outbox (so the ratio is what the outbox costs around MQTT).

Run: .venv/bin/python bench/gateway_outbox.py [--readings 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from device_simulators.patients import Measurement
from gateway.backoff import Backoff
from gateway.codec import BloodPressureMeasurement
from gateway.forwarder import _fit, forward_forever
from gateway.mqtt import MqttPublisher
from gateway.outbox import Outbox, QueuedReading
from gateway.readings import blood_pressure_reading
from homewatch.embedded.broker import Mosquitto
from homewatch.wire import DeviceIdentity, ReadingsMessage

DEVICE = DeviceIdentity(
    address="C0:5A:00:00:00:01", manufacturer="Acme", model="BP-1", serial_number="S1"
)
T0 = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
BATCH = 50
REPEATS = 3


def readings(n: int, offset: int = 0) -> list:
    out = []
    for i in range(offset, offset + n):
        raw = Measurement(T0 + timedelta(minutes=i), 100 + i % 80, 80, 70).encode()
        out.append(
            blood_pressure_reading(
                BloodPressureMeasurement.from_bytes(raw),
                raw,
                DEVICE,
                T0 + timedelta(minutes=i, seconds=30),
                ZoneInfo("UTC"),
            )
        )
    return out


def raw_sqlite(path: Path, texts: list[str], batch: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, reading TEXT NOT NULL)")
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        db.execute("BEGIN")
        db.executemany("INSERT INTO t (reading) VALUES (?)", [(t,) for t in texts[i : i + batch]])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return len(texts) / elapsed


async def outbox_enqueue(path: Path, items: list, batch: int) -> float:
    async with Outbox(path) as outbox:
        start = time.perf_counter()
        for i in range(0, len(items), batch):
            await outbox.put_many(items[i : i + batch])
        return len(items) / (time.perf_counter() - start)


def disk_bytes(path: Path) -> int:
    """Bytes of the database file and its WAL, after a checkpoint."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def bytes_in_use(path: Path) -> int:
    """Pages holding data (a file does not shrink when rows are deleted: SQLite reuses them)."""
    db = sqlite3.connect(path)
    pages, free, size = (
        db.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("page_count", "freelist_count", "page_size")
    )
    db.close()
    return (pages - free) * size


class Counter:
    def __init__(self, broker, topic: str) -> None:
        import paho.mqtt.client as paho

        self.count = 0
        self.done = asyncio.Event()
        self.target = 0
        loop = asyncio.get_running_loop()
        subscribed = asyncio.Event()
        self.subscribed = subscribed
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: loop.call_soon_threadsafe(subscribed.set)

        def on_message(_c, _u, m) -> None:
            n = len(ReadingsMessage.from_bytes(m.payload).readings)
            loop.call_soon_threadsafe(self._add, n)

        self.client.on_message = on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _add(self, n: int) -> None:
        self.count += n
        if self.target and self.count >= self.target:
            self.done.set()

    def expect(self, n: int) -> None:
        self.count, self.target = 0, n
        self.done.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def delivery(directory: Path, items: list) -> tuple[float, float]:
    broker = Mosquitto()
    endpoint = await asyncio.to_thread(broker.start)
    topic = "bench/gateways/gw-bench/readings"
    counter = Counter(endpoint, topic)
    await asyncio.wait_for(counter.subscribed.wait(), 5)
    try:
        async with MqttPublisher(endpoint.url, client_id="bench-gw") as publisher:
            await publisher.wait_connected(5)
            # Baseline: the same batches, published stop-and-wait, no outbox around them.
            batches = [
                _fit([QueuedReading(0, r) for r in items[i : i + BATCH]], "gw-bench")[1]
                for i in range(0, len(items), BATCH)
            ]
            counter.expect(len(items))
            start = time.perf_counter()
            for payload in batches:
                await publisher.publish(topic, payload)
            await asyncio.wait_for(counter.done.wait(), 60)
            bare = len(items) / (time.perf_counter() - start)

            async with Outbox(directory / "deliver.sqlite3") as outbox:
                await outbox.put_many(items)
                counter.expect(len(items))
                start = time.perf_counter()
                task = asyncio.create_task(
                    forward_forever(
                        outbox, publisher, gateway_id="gw-bench", topic=topic,
                        batch_size=BATCH, backoff=Backoff(0.1, 1),
                    )
                )  # fmt: skip
                await asyncio.wait_for(counter.done.wait(), 120)
                while await outbox.depth():
                    await asyncio.sleep(0.001)
                through = len(items) / (time.perf_counter() - start)
                task.cancel()
    finally:
        counter.close()
        await asyncio.to_thread(broker.close)
    return through, bare


async def main(n: int) -> None:
    items = readings(n)
    texts = [r.model_dump_json() for r in items]
    with tempfile.TemporaryDirectory(prefix="bench-outbox-", dir=os.environ.get("TMPDIR")) as d:
        directory = Path(d)
        print(f"{n} blood-pressure readings, {sum(map(len, texts)) / n:.0f} bytes of JSON each")
        print(f"disk: {directory} (fsync on every commit)")
        cases = (
            (1, "one reading per commit (a live measurement)"),
            (BATCH, f"{BATCH} per commit (a meter's stored records)"),
        )
        for batch, label in cases:
            # Interleaved repeats, medians: fsync times on a shared disk swing from run to run.
            floors, rates = [], []
            for rep in range(REPEATS):
                floors.append(raw_sqlite(directory / f"raw-{batch}-{rep}.sqlite3", texts, batch))
                path = directory / f"outbox-{batch}-{rep}.sqlite3"
                rates.append(await outbox_enqueue(path, items, batch))
            floor, rate = statistics.median(floors), statistics.median(rates)
            print(
                f"enqueue, {label}:\n"
                f"  outbox {rate:10,.0f} readings/s   bare SQLite floor {floor:10,.0f}/s"
                f"   outbox/floor {rate / floor:5.2f}   (medians of {REPEATS})"
            )
        size = disk_bytes(directory / f"outbox-{BATCH}-0.sqlite3")
        raw_size = disk_bytes(directory / f"raw-{BATCH}-0.sqlite3")
        print(
            f"disk per queued reading: {size / n:,.0f} bytes (bare JSON rows: {raw_size / n:,.0f};"
            f" the rest is the reading-id index and the handed-over ids)"
        )
        through, bare = await delivery(directory, items)
        print(
            f"delivery to Mosquitto and one subscriber, batches of {BATCH}, stop-and-wait:\n"
            f"  outbox -> MQTT {through:10,.0f} readings/s   same batches without the outbox "
            f"{bare:10,.0f}/s   ratio {through / bare:5.2f}"
        )
        path = directory / "deliver.sqlite3"
        async with Outbox(path) as outbox:
            depth = await outbox.depth()
        file_size, in_use = disk_bytes(path), bytes_in_use(path)
        print(
            f"after delivery: outbox depth {depth}; the file keeps {file_size / n:,.0f} bytes per "
            f"reading (free pages, reused), of which {in_use / n:,.0f} in use: the delivered "
            "reading's id, remembered 400 days so that a re-sent record is not queued twice"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=3000)
    asyncio.run(main(parser.parse_args().readings))
