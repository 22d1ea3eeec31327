"""Ingest throughput, latency and memory, against ceilings and baselines measured in the same run.

All on one private Mosquitto started from deploy/mosquitto/mosquitto.conf and the machine's
PostgreSQL (a database of the run's own, migrated, dropped at the end):

* raw ceiling: a paho subscriber that only counts (QoS 1, acknowledged by paho), same broker,
  same payloads;
* full ingest (validate, store durably, acknowledge after commit, daily summaries, threshold
  rules) with one reading per message, and with backlog messages of 50 readings;
* naive baseline: a paho subscriber doing one INSERT per message, autocommit;
* two consumer processes on one shared subscription: throughput, and proof of no duplicates;
* latency publish -> committed (the consumer's on_result hook, called after the commit) at half
  the one-reading rate measured above, p50 / p99;
* memory: RSS of each consumer process, sampled through its run.

Throughput runs drain a backlog queued for the consumer's persistent session before it starts, so
that publishers do not compete for the two cores with what is measured; each consumer runs in a
process of its own. Sizes are scaled for a run of a few minutes (printed); --scale multiplies them.

Run: .venv/bin/python bench/ingest.py [--scale 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as paho
import psutil
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from psycopg import sql

from homewatch import wire
from homewatch.embedded.broker import Mosquitto
from ingest_server.migrate import migrate

SERVER = os.environ.get(
    "HOMEWATCH_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
NOW = datetime.now(UTC).replace(microsecond=0)
SESSION_EXPIRY_S = 600


@dataclass(frozen=True)
class Sizes:
    patients: int
    single: int  # one-reading messages per throughput case
    backlog_messages: int  # 50-reading messages
    per_backlog: int
    naive: int
    latency_s: float

    @classmethod
    def scaled(cls, scale: float) -> Sizes:
        return cls(
            patients=max(50, int(2000 * scale)),
            single=max(500, int(40_000 * scale)),
            backlog_messages=max(20, int(1200 * scale)),
            per_backlog=50,
            naive=max(200, int(6000 * scale)),
            latency_s=max(5.0, 20.0 * scale),
        )


# --- data --------------------------------------------------------------------------------------


def _device(prefix: str, n: int) -> wire.DeviceIdentity:
    return wire.DeviceIdentity(
        address=f"C0:5A:00:{n // 65536 % 256:02X}:{n // 256 % 256:02X}:{n % 256:02X}",
        manufacturer="Bench",
        model="BP-1",
        serial_number=f"{prefix}-{n}",
    )


def _reading(dev: wire.DeviceIdentity, measured_at: datetime, k: int) -> wire.BloodPressureReading:
    systolic = 110 + (k * 37) % 60 + (75 if k % 997 == 0 else 0)  # a crisis now and then
    diastolic = 70 + (k * 11) % 25
    raw = f"{systolic}/{diastolic}/{k}".encode()
    device_time = measured_at.replace(tzinfo=None)
    return wire.BloodPressureReading(
        reading_id=wire.derive_reading_id(dev, wire.bp_record_key(device_time, raw, measured_at)),
        device=dev,
        device_time=device_time,
        received_at=measured_at + timedelta(seconds=5),
        measured_at=measured_at,
        values=wire.BloodPressureValues(
            systolic=wire.Quantity(value=systolic, unit=wire.Unit.MMHG),
            diastolic=wire.Quantity(value=diastolic, unit=wire.Unit.MMHG),
            mean_arterial_pressure=wire.Quantity(
                value=round((systolic + 2 * diastolic) / 3, 1), unit=wire.Unit.MMHG
            ),
            pulse_rate=wire.Quantity(value=60 + k % 30, unit=wire.Unit.BEATS_PER_MINUTE),
        ),
        raw=raw.hex(),
    )


def single_messages(prefix: str, n: int, patients: int) -> list[tuple[str, bytes]]:
    """One reading per message: patients measure in turn, every 6 hours, going back in time."""
    out = []
    for k in range(n):
        p = k % patients
        dev = _device(prefix, p)
        when = NOW - timedelta(hours=6 * (k // patients), minutes=p % 360)
        msg = wire.ReadingsMessage(
            gateway_id=f"{prefix}-gw{p}", sent_at=NOW, readings=[_reading(dev, when, k)]
        )
        out.append((f"{prefix}-gw{p}", msg.to_bytes()))
    return out


def backlog_messages(prefix: str, n: int, per: int, patients: int) -> list[tuple[str, bytes]]:
    """A device's memory, ``per`` readings 6 hours apart, per message."""
    out = []
    for m in range(n):
        p = m % patients
        dev = _device(prefix, p)
        base = NOW - timedelta(hours=6 * per * (m // patients + 1), minutes=p % 360)
        readings = [_reading(dev, base + timedelta(hours=6 * j), m * per + j) for j in range(per)]
        msg = wire.ReadingsMessage(gateway_id=f"{prefix}-gw{p}", sent_at=NOW, readings=readings)
        out.append((f"{prefix}-gw{p}", msg.to_bytes()))
    return out


def enrol(url: str, prefix: str, patients: int) -> None:
    keys = [_device(prefix, p).device_key for p in range(patients)]
    ids = [f"{prefix}-p{p}" for p in range(patients)]
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute(
            "INSERT INTO patients (patient_id, display_name) SELECT unnest(%s::text[]), 'bench'",
            (ids,),
        )
        conn.execute("INSERT INTO devices (device_key) SELECT unnest(%s::text[])", (keys,))
        conn.execute(
            "INSERT INTO device_bindings (device_key, patient_id, valid_from)"
            " SELECT unnest(%s::text[]), unnest(%s::text[]), now() - interval '5 years'",
            (keys, ids),
        )


# --- MQTT helpers --------------------------------------------------------------------------------


def publish_all(host: str, port: int, root: str, payloads: list[tuple[str, bytes]]) -> float:
    """QoS 1, up to 1000 in flight; returns seconds until every PUBACK came."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    start = time.perf_counter()
    infos = [
        client.publish(wire.readings_topic(gw, root), payload, qos=1) for gw, payload in payloads
    ]
    for info in infos:
        info.wait_for_publish(120)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return elapsed


def make_session(host: str, port: int, client_id: str, subscription: str) -> None:
    """Create a persistent session with the subscription, so that a backlog queues for it."""
    done = threading.Event()
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    client.on_connect = lambda c, *_: c.subscribe(subscription, qos=1)
    client.on_subscribe = lambda *_: done.set()
    client.connect(host, port, clean_start=False, properties=props)
    client.loop_start()
    if not done.wait(10):
        raise RuntimeError("subscription not acknowledged")
    client.disconnect()
    client.loop_stop()


# --- child processes -----------------------------------------------------------------------------


def _rss_sampler(samples: list[int], stop: threading.Event) -> None:
    proc = psutil.Process()
    while not stop.is_set():
        samples.append(proc.memory_info().rss)
        stop.wait(0.25)


def raw_counter(
    host: str, port: int, client_id: str, subscription: str, expected: int, out: Any
) -> None:
    """Count messages, nothing else (paho acknowledges each after the callback)."""
    done = threading.Event()
    count = 0

    def on_message(*_: Any) -> None:
        nonlocal count
        count += 1
        if count >= expected:
            done.set()

    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    client.on_connect = lambda c, *_: c.subscribe(subscription, qos=1)
    client.on_message = on_message
    start = time.perf_counter()
    client.connect(host, port, clean_start=False, properties=props)
    client.loop_start()
    done.wait(600)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    out.send({"elapsed": elapsed, "messages": count})


def naive_consumer(
    host: str,
    port: int,
    client_id: str,
    subscription: str,
    url: str,
    expected: int,
    out: Any,
) -> None:
    """One INSERT per message, autocommit, acknowledged by paho after the callback."""
    done = threading.Event()
    count = 0
    conn = psycopg.connect(url, autocommit=True)
    insert = """
        INSERT INTO bp_readings (reading_id, patient_id, device_key, gateway_id, measured_at,
            device_time, received_at, systolic_mmhg, diastolic_mmhg, mean_arterial_mmhg,
            pulse_bpm, reported_unit, flags, raw)
        SELECT %s, b.patient_id, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'mmHg', '{}', %s
        FROM device_bindings b WHERE b.device_key = %s AND b.valid_to IS NULL
        ON CONFLICT DO NOTHING"""

    def on_message(_c: Any, _u: Any, m: paho.MQTTMessage) -> None:
        nonlocal count
        message = wire.ReadingsMessage.from_bytes(m.payload)
        for r in message.readings:
            v = r.values
            conn.execute(
                insert,
                (
                    r.reading_id,
                    r.device.device_key,
                    message.gateway_id,
                    r.measured_at,
                    r.device_time,
                    r.received_at,
                    v.systolic.value,
                    v.diastolic.value,
                    v.mean_arterial_pressure.value,
                    v.pulse_rate.value if v.pulse_rate else None,
                    bytes.fromhex(r.raw),
                    r.device.device_key,
                ),
            )
        count += 1
        if count >= expected:
            done.set()

    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    client.on_connect = lambda c, *_: c.subscribe(subscription, qos=1)
    client.on_message = on_message
    start = time.perf_counter()
    client.connect(host, port, clean_start=False, properties=props)
    client.loop_start()
    done.wait(600)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    conn.close()
    out.send({"elapsed": elapsed, "messages": count})


def ingest_consumer(settings: dict[str, Any], expected: int, latency: bool, out: Any) -> None:
    """The real consumer until ``expected`` messages are acknowledged (or 10 minutes)."""
    from ingest_server import db
    from ingest_server.consumer import Consumer
    from ingest_server.settings import IngestSettings

    s = IngestSettings(**settings)
    samples: list[int] = []
    stop = threading.Event()
    threading.Thread(target=_rss_sampler, args=(samples, stop), daemon=True).start()
    acked: list[tuple[str, float]] = []

    async def on_result(result: Any) -> None:
        if result.stored_reading_ids:
            acked.append((result.stored_reading_ids[0], time.time()))

    async def run() -> dict[str, Any]:
        pool = db.create_pool(s.database_url, min_size=s.workers, max_size=s.workers + 1)
        await db.open_pool(pool, timeout=10)
        out.send({"started": time.time()})  # for runs that end on the parent's say-so
        start = time.perf_counter()
        async with Consumer(s, pool, on_result=on_result if latency else None) as consumer:
            deadline = time.monotonic() + 600
            while consumer.stats.acked < expected and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - start
            stats = consumer.counters_snapshot()
        await pool.close()
        return {"elapsed": elapsed, "stats": stats}

    result = asyncio.run(run())
    stop.set()
    result["rss"] = samples
    result["acked"] = acked
    out.send(result)


def in_child(target: Callable[..., None], *args: Any) -> mp.Process:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(*args, child), daemon=True)
    proc.start()
    proc.result_pipe = parent  # type: ignore[attr-defined]
    return proc


def collect(proc: mp.Process, timeout: float = 700) -> dict[str, Any]:
    """The child's final result (skipping its "started" note)."""
    pipe = proc.result_pipe  # type: ignore[attr-defined]
    while True:
        if not pipe.poll(timeout):
            proc.kill()
            raise RuntimeError(f"{proc.name} gave no result in {timeout} s")
        result = pipe.recv()
        if "started" not in result:
            break
    proc.join(10)
    return result


def started(proc: mp.Process, timeout: float = 60) -> float:
    """When the child's consumer started (wall clock)."""
    pipe = proc.result_pipe  # type: ignore[attr-defined]
    if not pipe.poll(timeout):
        raise RuntimeError(f"{proc.name} did not start in {timeout} s")
    return pipe.recv()["started"]


# --- the run -------------------------------------------------------------------------------------


class Bench:
    def __init__(self, sizes: Sizes) -> None:
        self.sizes = sizes
        self.broker = Mosquitto()
        self.db_name = f"hwbench_{uuid.uuid4().hex[:10]}"
        self.url = ""

    def __enter__(self) -> Bench:
        endpoint = self.broker.start()
        self.host, self.port = endpoint.host, endpoint.port
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.db_name)))
        self.url = psycopg.conninfo.make_conninfo(SERVER, dbname=self.db_name)
        migrate(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.broker.close()
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.db_name)
                )
            )

    def settings(self, root: str, client_id: str, **over: Any) -> dict[str, Any]:
        return {
            "database_url": self.url,
            "mqtt_url": f"mqtt://{self.host}:{self.port}",
            "topic_root": root,
            "client_id": client_id,
            "session_expiry_s": SESSION_EXPIRY_S,
            **over,
        }

    def queue(
        self,
        case: str,
        payloads: list[tuple[str, bytes]],
        client_ids: list[str],
        shared: bool = True,
    ) -> str:
        """A fresh topic root with persistent sessions holding ``payloads``."""
        root = f"bench/{case}/{uuid.uuid4().hex[:6]}"
        sub = wire.readings_subscription("ingest" if shared else None, root)
        for cid in client_ids:
            make_session(self.host, self.port, cid, sub)
        publish_all(self.host, self.port, root, payloads)
        return root

    def rows(self, table: str, prefix: str) -> tuple[int, int]:
        with psycopg.connect(self.url) as conn:
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*), count(DISTINCT reading_id) FROM {} WHERE patient_id LIKE %s"
                ).format(sql.Identifier(table)),
                (f"{prefix}-p%",),
            ).fetchone()
        assert row is not None
        return row[0], row[1]


def fmt_rss(samples: list[int]) -> str:
    if not samples:
        return "n/a"
    mb = [s / 2**20 for s in samples]
    third = max(1, len(mb) // 3)
    first, last = statistics.fmean(mb[:third]), statistics.fmean(mb[-third:])
    return (
        f"RSS start {mb[0]:.0f} MB, peak {max(mb):.0f} MB, end {mb[-1]:.0f} MB"
        f" (mean of the first third {first:.0f}, of the last {last:.0f})"
    )


class Report:
    """Lines as they come, and the table at the end."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add(self, case: str, figure: str, ratio: str, *notes: str) -> None:
        self.rows.append((case, figure, ratio))
        print(f"{case:<40} {figure:>18}   {ratio}", flush=True)
        for note in notes:
            print(f"    {note}", flush=True)

    def table(self) -> None:
        print("\n| case | figure | ratio (same run) |\n|---|---:|---|")
        for case, figure, ratio in self.rows:
            print(f"| {case} | {figure} | {ratio} |")


def two_consumers(bench: Bench, sizes: Sizes) -> dict[str, Any]:
    """Two consumer processes draining one backlog; stops them once every reading is stored."""
    enrol(bench.url, "two", sizes.patients)
    payloads = single_messages("two", sizes.single, sizes.patients)
    root = bench.queue("two", payloads, ["ingest-two-a", "ingest-two-b"])
    procs = [
        in_child(ingest_consumer, bench.settings(root, cid), len(payloads), False)
        for cid in ("ingest-two-a", "ingest-two-b")
    ]
    start = max(started(p) for p in procs)  # both running (process start-up not counted)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and bench.rows("bp_readings", "two")[0] < len(payloads):
        time.sleep(0.02)
    elapsed = time.time() - start
    for p in procs:
        p.kill()
    rows, distinct = bench.rows("bp_readings", "two")
    with psycopg.connect(bench.url) as conn:
        registered = conn.execute(
            "SELECT count(*) FROM reading_ids r JOIN bp_readings b USING (reading_id, measured_at)"
            " WHERE b.patient_id LIKE 'two-p%'"
        ).fetchone()
    assert registered is not None
    return {
        "rate": rows / elapsed,
        "rows": rows,
        "distinct": distinct,
        "registered": registered[0],
        "sent": len(payloads),
    }


def latency(bench: Bench, sizes: Sizes, rate: float) -> dict[str, Any]:
    """Live publishing at ``rate``; publish -> committed (the on_result hook) per message."""
    enrol(bench.url, "lat", sizes.patients)
    n = int(rate * sizes.latency_s)
    payloads = single_messages("lat", n, sizes.patients)
    root = f"bench/lat/{uuid.uuid4().hex[:6]}"
    proc = in_child(ingest_consumer, bench.settings(root, "ingest-lat"), n, True)
    time.sleep(2.0)  # connected and subscribed
    sent = paced_publish(bench.host, bench.port, root, payloads, rate)
    r = collect(proc)
    sent_at = {
        str(wire.ReadingsMessage.from_bytes(p).readings[0].reading_id): t
        for (_, p), t in zip(payloads, sent, strict=True)
    }
    lags = sorted((at - sent_at[rid]) * 1000 for rid, at in r["acked"] if rid in sent_at)
    return {
        "n": n,
        "p50": statistics.median(lags) if lags else float("nan"),
        "p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else float("nan"),
        "rss": r["rss"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the sizes (default 1)")
    args = parser.parse_args()
    sizes = Sizes.scaled(args.scale)
    print(
        f"scaled for a run of a few minutes (--scale {args.scale:g}): {sizes.patients:,} patients;"
        f" {sizes.single:,} one-reading messages per throughput case;"
        f" {sizes.backlog_messages:,} messages of {sizes.per_backlog} readings;"
        f" naive baseline {sizes.naive:,} messages; latency and memory over {sizes.latency_s:.0f} s"
        " (the issue's memory run is 10 minutes)"
    )
    print(
        f"{os.cpu_count()} CPUs shared by broker, PostgreSQL and the processes measured;"
        " Mosquitto from deploy/mosquitto/mosquitto.conf; throughput = draining a queued backlog\n"
    )
    report = Report()
    with Bench(sizes) as bench:
        # 1. Raw ceiling.
        payloads = single_messages("raw", sizes.single, sizes.patients)
        root = bench.queue("raw", payloads, ["raw-counter"])
        sub = wire.readings_subscription("ingest", root)
        r = collect(
            in_child(raw_counter, bench.host, bench.port, "raw-counter", sub, len(payloads))
        )
        raw = r["messages"] / r["elapsed"]
        report.add("raw ceiling: paho, count only", f"{raw:,.0f} msg/s", "1.00 (ceiling)")

        # 2. Full ingest, one reading per message.
        enrol(bench.url, "one", sizes.patients)
        payloads = single_messages("one", sizes.single, sizes.patients)
        root = bench.queue("one", payloads, ["ingest-one"])
        r = collect(
            in_child(ingest_consumer, bench.settings(root, "ingest-one"), len(payloads), False)
        )
        one = len(payloads) / r["elapsed"]
        rows, _ = bench.rows("bp_readings", "one")
        report.add(
            "full ingest, 1 reading/message",
            f"{one:,.0f} msg/s",
            f"{one / raw:.2f} of raw",
            f"{rows:,} rows, {r['stats']['batches']:,} transactions,"
            f" {r['stats']['alerts_raised']} alerts raised; peak held {r['stats']['peak_held']}",
            fmt_rss(r["rss"]),
        )

        # 3. Full ingest, backlog messages of 50 readings.
        enrol(bench.url, "fifty", sizes.patients)
        payloads = backlog_messages(
            "fifty", sizes.backlog_messages, sizes.per_backlog, sizes.patients
        )
        root = bench.queue("fifty", payloads, ["ingest-fifty"])
        r = collect(
            in_child(ingest_consumer, bench.settings(root, "ingest-fifty"), len(payloads), False)
        )
        fifty = len(payloads) * sizes.per_backlog / r["elapsed"]
        rows, _ = bench.rows("bp_readings", "fifty")
        report.add(
            f"full ingest, {sizes.per_backlog} readings/message",
            f"{fifty:,.0f} readings/s",
            f"{fifty / one:.1f}x the readings/s of 1/message",
            f"{len(payloads) / r['elapsed']:,.0f} msg/s; {rows:,} rows;"
            f" peak held {r['stats']['peak_held']}",
            fmt_rss(r["rss"]),
        )

        # 4. Naive baseline.
        enrol(bench.url, "naive", sizes.patients)
        payloads = single_messages("naive", sizes.naive, sizes.patients)
        root = bench.queue("naive", payloads, ["naive"])
        sub = wire.readings_subscription("ingest", root)
        r = collect(
            in_child(naive_consumer, bench.host, bench.port, "naive", sub, bench.url, len(payloads))
        )
        naive = r["messages"] / r["elapsed"]
        report.add(
            "naive: INSERT per message, autocommit",
            f"{naive:,.0f} msg/s",
            f"full ingest is {one / naive:.1f}x this",
        )

        # 5. Two consumer processes, one shared subscription.
        two = two_consumers(bench, sizes)
        once = two["rows"] == two["distinct"] == two["registered"] == two["sent"]
        report.add(
            "two consumers, shared subscription",
            f"{two['rate']:,.0f} msg/s",
            f"{two['rate'] / one:.2f}x one consumer",
            f"{two['rows']:,} rows, {two['distinct']:,} distinct ids, {two['registered']:,}"
            f" registered, {two['sent']:,} sent: {'no duplicates' if once else 'MISMATCH'}",
        )

        # 6. Latency at half the one-reading rate, live.
        lat = latency(bench, sizes, one / 2)
        report.add(
            f"latency at {one / 2:,.0f} msg/s (half of 2.)",
            f"p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms",
            f"{lat['n']:,} messages, publish -> committed",
            fmt_rss(lat["rss"]),
        )
    report.table()


def paced_publish(
    host: str, port: int, root: str, payloads: list[tuple[str, bytes]], rate: float
) -> list[float]:
    """Publish at ``rate`` msg/s; the wall-clock send time of each, in order."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    sent = []
    infos = []
    start = time.perf_counter()
    for i, (gw, payload) in enumerate(payloads):
        target = start + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent.append(time.time())
        infos.append(client.publish(wire.readings_topic(gw, root), payload, qos=1))
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()
    return sent


if __name__ == "__main__":
    main()
