"""Real processes for the fault tests: the device simulator, the gateway (``python -m
homewatch.cli_gateway run``), a TCP proxy that can cut the network, and a persistent MQTT
subscriber that records every reading the broker delivers.

Shared by ``bench/gateway_*.py``: nothing here is pytest-specific.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from homewatch.embedded.broker import BrokerEndpoint
from homewatch.wire import ReadingsMessage

ROOT = Path(__file__).resolve().parents[2]
SIM_SCRIPT = Path(__file__).resolve().with_name("sim_devices.py")


class SimulatorProcess:
    """``sim_devices.py`` in its own process; ``port`` is its BLE controller over TCP."""

    def __init__(self, workdir: Path, **options: object) -> None:
        self.produced_path = workdir / "produced.jsonl"
        self.log_path = workdir / "sim.log"
        self.options = options
        self.process: asyncio.subprocess.Process | None = None
        self.port: int | None = None
        self._log = None
        self.done = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 20.0) -> int:
        args = [sys.executable, str(SIM_SCRIPT), "--produced", str(self.produced_path)]
        for name, value in self.options.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        self._log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            *args, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log
        )
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            line = (await self.process.stdout.readline()).decode()
        if not line.startswith("PORT "):
            raise RuntimeError(f"simulator did not start: {line!r}; see {self.log_path}")
        self.port = int(line.split()[1])
        self._reader = asyncio.create_task(self._read_rest())
        return self.port

    async def _read_rest(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            if line.strip() == b"DONE":
                self.done.set()

    def produced(self) -> list[dict]:
        if not self.produced_path.exists():
            return []
        return [json.loads(line) for line in self.produced_path.read_text().splitlines() if line]

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._log is not None:
            self._log.close()
            self._log = None


def gateway_env(
    *,
    gateway_id: str,
    mqtt_url: str,
    topic_root: str,
    outbox: Path,
    ble_port: int,
    **extra: object,
) -> dict[str, str]:
    """The environment of a gateway process tuned for tests: quick retries and keep-alive."""
    values: dict[str, object] = {
        "GATEWAY_ID": gateway_id,
        "MQTT_URL": mqtt_url,
        "TOPIC_ROOT": topic_root,
        "OUTBOX_PATH": outbox,
        "BLE_TRANSPORT": f"tcp-client:127.0.0.1:{ble_port}",
        "RECONNECT_MIN_SECONDS": 0.1,
        "RECONNECT_MAX_SECONDS": 1.0,
        "MQTT_KEEPALIVE_SECONDS": 2,
        "METER_REST_SECONDS": 0.3,
        "TRANSFER_TIMEOUT_SECONDS": 5,
        "STORED_RECORDS_QUIET_SECONDS": 0.5,
        "STATUS_INTERVAL_SECONDS": 1,
        "BATCH_SIZE": 20,
        "LOG_FORMAT": "json",
    }
    values.update({k.upper(): v for k, v in extra.items()})
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEWATCH_GATEWAY_")}
    env.update({f"HOMEWATCH_GATEWAY_{k}": str(v) for k, v in values.items()})
    return env


class GatewayProcess:
    """``homewatch gateway run`` (the new CLI module) as a process of its own."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._starts_logged_before = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        self._starts_logged_before = self._starts_logged()
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "homewatch.cli_gateway",
                "run",
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    def _starts_logged(self) -> int:
        """How many starts the log shows (a start killed early may never log one)."""
        if not self.log_path.exists():
            return 0
        text = self.log_path.read_text(errors="replace")
        return len(re.findall(r"outbox \S+ holds \d+ reading\(s\)", text))

    async def wait_started(self, timeout: float = 20.0) -> None:
        """Until the latest start has opened its outbox (its log says so): a stop sent before
        that would test Python's start-up, not the gateway's clean stop."""
        async with asyncio.timeout(timeout):
            while self._starts_logged() <= self._starts_logged_before:
                await asyncio.sleep(0.05)

    async def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, the clean stop systemd uses; returns the exit code."""
        if self.process is None:
            return None
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode


class TcpProxy:
    """A TCP relay between the gateway and the broker that can lose the network.

    ``cut("reset")`` closes every connection and refuses new ones (the gateway notices at
    once); ``cut("blackhole")`` keeps the connections open but forwards nothing and answers
    nothing (a dead Wi-Fi: only the MQTT keep-alive notices). ``restore()`` lets traffic through.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port: int | None = None
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._mode: str | None = None  # None: open

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def cut(self, mode: str = "reset") -> None:
        self._mode = mode
        if mode == "reset":
            for writer in list(self._writers):
                with contextlib.suppress(Exception):
                    writer.transport.abort()  # RST

    def restore(self) -> None:
        if self._mode == "blackhole":
            # The connections that were silent are dead for both ends by now: drop them.
            for writer in list(self._writers):
                with contextlib.suppress(Exception):
                    writer.transport.abort()
        self._mode = None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._mode == "reset":
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            self._pipes.difference_update(pipes)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            while self._mode == "blackhole":
                await asyncio.sleep(0.05)  # swallowed: neither delivered nor refused
            if self._mode == "reset":
                return
            writer.write(data)
            await writer.drain()


@dataclass
class Delivery:
    reading_id: str
    device_key: str
    sequence_number: int | None
    systolic: float | None
    dup: bool
    at: float


@dataclass
class ReadingsTap:
    """A persistent MQTT 5 subscriber (clean start off, session expiry): what the broker holds
    for it while it is away, or while the broker restarts, comes later, not never.

    Records every reading of every message, with the MQTT DUP flag of the delivery: a broker's
    own redelivery to us (DUP set) is not a gateway publishing twice.
    """

    endpoint: BrokerEndpoint
    topic: str
    deliveries: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._subscribed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=f"tap-{uuid.uuid4().hex[:10]}",
            protocol=paho.MQTTv5,
        )
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._loop.call_soon_threadsafe(self._subscribed.set)
        self.client.on_message = self._on_message
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600
        self.client.connect_async(
            self.endpoint.host, self.endpoint.port, clean_start=False, properties=properties
        )
        self.client.loop_start()

    async def wait_subscribed(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._subscribed.wait(), timeout)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe(self.topic, qos=1)

    def _on_message(self, client, userdata, message: paho.MQTTMessage) -> None:
        now = time.monotonic()
        batch = ReadingsMessage.from_bytes(message.payload)
        for r in batch.readings:
            self.deliveries.append(
                Delivery(
                    str(r.reading_id),
                    r.device.device_key,
                    getattr(r, "sequence_number", None),
                    r.values.systolic.value if r.kind == "blood_pressure" else None,  # type: ignore[union-attr]
                    bool(message.dup),
                    now,
                )
            )

    def received_keys(self) -> set[tuple[str, object]]:
        """(device key, sequence number or systolic) of every reading received."""
        return {
            (d.device_key, d.sequence_number if d.sequence_number is not None else d.systolic)
            for d in list(self.deliveries)
        }

    def publications(self) -> Counter[str]:
        """How many times each reading id reached the broker from the gateway (first deliveries
        of a message to us; the broker's own redeliveries, DUP set, do not count)."""
        return Counter(d.reading_id for d in list(self.deliveries) if not d.dup)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def produced_keys(produced: list[dict]) -> set[tuple[str, object]]:
    return {(p["device_key"], p.get("sequence_number", p.get("systolic"))) for p in produced}


async def wait_until(check, timeout: float, interval: float = 0.1) -> bool:
    """Poll ``check`` until true or ``timeout``; whether it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(interval)
    return bool(check())


def acked_ids(outbox: Path) -> set[str]:
    """Reading ids whose PUBACK the gateway has processed: handed over, no longer queued.

    Read-only, while the gateway runs or after it died (WAL: a consistent snapshot either way).
    """
    import sqlite3

    if not outbox.exists():  # killed before it made its outbox
        return set()
    db = sqlite3.connect(f"{outbox.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT reading_id FROM handed_over EXCEPT SELECT reading_id FROM outbox"
        ).fetchall()
    finally:
        db.close()
    return {r[0] for r in rows}


@dataclass(frozen=True)
class Fault:
    """A fault injected at ``at`` (monotonic), with the readings acknowledged by then."""

    kind: str
    at: float
    acked: frozenset[str]


#: A delivery this long after a fault can no longer be a message that was already on its way.
IN_FLIGHT_MARGIN = 0.5


@dataclass
class DeliveryReport:
    produced: int
    received: int
    missing: list[tuple[str, object]]
    #: Reading ids published more than once (the window between PUBACK and the outbox delete,
    #: or a message in flight when the fault hit), with their count.
    duplicated: dict[str, int]
    #: Readings published again although their PUBACK had been processed before a fault.
    republished_after_ack: list[str]

    def ok(self, faults: int, batch_size: int) -> bool:
        return (
            not self.missing
            and not self.republished_after_ack
            and len(self.duplicated) <= faults * batch_size
            and all(n <= 1 + faults for n in self.duplicated.values())
        )


def delivery_report(sim: SimulatorProcess, tap: ReadingsTap, faults: list[Fault]) -> DeliveryReport:
    produced = produced_keys(sim.produced())
    received = tap.received_keys()
    publications = tap.publications()
    later: dict[str, list[float]] = {}
    for d in list(tap.deliveries):
        if not d.dup:
            later.setdefault(d.reading_id, []).append(d.at)
    republished = sorted(
        {
            reading_id
            for fault in faults
            for reading_id in fault.acked
            if any(t > fault.at + IN_FLIGHT_MARGIN for t in later.get(reading_id, []))
        }
    )
    return DeliveryReport(
        produced=len(produced),
        received=len(received & produced),
        missing=sorted(produced - received, key=str),
        duplicated={k: n for k, n in publications.items() if n > 1},
        republished_after_ack=republished,
    )
