"""A gateway that never loses a reading, proved against real processes with faults injected:
the broker stopped and restarted, the gateway killed with -9 at random moments and restarted,
the network between gateway and broker cut (reset, and silently dropped) and restored.

Each test runs simulated glucose meters (and a cuff where the gateway is not killed) in a
process of their own, a gateway process (``python -m homewatch.cli_gateway run``) that reads
them over a bumble controller served on TCP, and a private Mosquitto. A persistent subscriber
records every reading the broker delivers. Checked at the end:

* every reading the simulators produced reached the broker;
* no reading was published again after its PUBACK had been processed (deleted from the outbox
  at the moment of the fault, delivered again later);
* duplicates stay within the unavoidable window: at most one batch per fault (a batch whose
  PUBACK was received but whose delete had not committed, or a message in flight when the
  link dropped). Ingest stores those once: ``ON CONFLICT (reading_id) DO NOTHING``.

Cuffs are left out of the kill test on purpose: the Bluetooth stack confirms a cuff's
indication before the gateway has written it to the outbox, so a kill in those milliseconds
loses that measurement whatever the gateway does (see the report of issue 5).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator

import pytest

from homewatch.embedded.broker import Mosquitto
from homewatch.wire import readings_topic
from tests.faults.fault_support import (
    Fault,
    GatewayProcess,
    ReadingsTap,
    SimulatorProcess,
    TcpProxy,
    acked_ids,
    delivery_report,
    gateway_env,
    produced_keys,
    wait_until,
)

pytestmark = pytest.mark.faults

BATCH = 20
DRAIN_TIMEOUT = 25.0


@pytest.fixture
async def broker(tmp_path) -> AsyncIterator[Mosquitto]:
    broker = Mosquitto(data_dir=tmp_path / "mosquitto")
    (tmp_path / "mosquitto").mkdir()
    await asyncio.to_thread(broker.start)
    try:
        yield broker
    finally:
        await asyncio.to_thread(broker.close)


class Rig:
    """The processes of one test; the fixture stops whatever is left of them."""

    def __init__(self, tmp_path, broker: Mosquitto, topic_root: str) -> None:
        self.tmp_path = tmp_path
        self.broker = broker
        self.topic_root = topic_root
        self.sim: SimulatorProcess | None = None
        self.tap: ReadingsTap | None = None
        self.gateway: GatewayProcess | None = None
        self.faults: list[Fault] = []

    @property
    def outbox(self):
        return self.tmp_path / "outbox.sqlite3"

    async def start(self, *, mqtt_url: str | None = None, **sim_options) -> None:
        self.sim = SimulatorProcess(self.tmp_path, **sim_options)
        port = await self.sim.start()
        self.tap = ReadingsTap(self.broker.endpoint, readings_topic("gw-fault", self.topic_root))
        await self.tap.wait_subscribed()
        self.gateway = GatewayProcess(
            gateway_env(
                gateway_id="gw-fault",
                mqtt_url=mqtt_url or self.broker.endpoint.url,
                topic_root=self.topic_root,
                outbox=self.outbox,
                ble_port=port,
                batch_size=BATCH,
            ),
            self.tmp_path / "gateway.log",
        )
        await self.gateway.start()

    def fault(self, kind: str, *, acked: bool = True) -> None:
        """Note a fault now, with the readings whose PUBACK the gateway has processed."""
        ids = frozenset(acked_ids(self.outbox)) if acked else frozenset()
        self.faults.append(Fault(kind, time.monotonic(), ids))

    async def check(self) -> None:
        sim, tap, gateway = self.sim, self.tap, self.gateway
        assert sim is not None and tap is not None and gateway is not None
        await asyncio.wait_for(sim.done.wait(), 30)
        everything = await wait_until(
            lambda: produced_keys(sim.produced()) <= tap.received_keys(), DRAIN_TIMEOUT
        )
        report = delivery_report(sim, tap, self.faults)
        logs = f"logs in {self.tmp_path}"
        assert gateway.process is not None and gateway.process.returncode is None, (
            f"the gateway died; {logs}"
        )
        assert everything and not report.missing, (
            f"{len(report.missing)} of {report.produced} readings never reached the broker: "
            f"{report.missing[:5]}; {logs}"
        )
        assert not report.republished_after_ack, (report.republished_after_ack, logs)
        assert report.ok(len(self.faults), BATCH), (report, logs)
        await gateway.wait_started()  # a gateway restarted a moment ago may still be starting
        assert await gateway.stop() == 0  # SIGTERM: a clean stop

    async def close(self) -> None:
        if self.gateway is not None:
            await self.gateway.kill()
        if self.sim is not None:
            await self.sim.stop()
        if self.tap is not None:
            self.tap.close()


@pytest.fixture
async def rig(tmp_path, broker, topic_root) -> AsyncIterator[Rig]:
    rig = Rig(tmp_path, broker, topic_root)
    try:
        yield rig
    finally:
        await rig.close()


async def test_the_broker_stopped_and_restarted(rig, broker):
    await rig.start(meters=3, cuffs=1, records=80, interval=0.08)
    await asyncio.sleep(2.0)
    # 10 s: longer than the gateway's publish timeout (2 x keep-alive + 5 s = 9 s here), so
    # publishes fail and are retried; 1.5 s: a quick restart.
    for downtime in (10.0, 1.5):
        # Late first deliveries are normal here (queued for the subscriber while the broker was
        # down), so the republished check is left to the other faults; the bound still holds.
        rig.fault("broker stopped", acked=False)
        await asyncio.to_thread(broker.stop)  # SIGTERM: Mosquitto saves its sessions
        await asyncio.sleep(downtime)  # readings accrue in the gateway's outbox meanwhile
        await asyncio.to_thread(broker.start)
        await asyncio.sleep(1.5)
    await rig.check()


async def test_the_gateway_killed_at_random_moments_and_restarted(rig):
    seed = int(os.environ.get("HOMEWATCH_FAULT_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    # 15 records in each meter's memory: the first transfers are long enough to be cut.
    await rig.start(meters=3, stored=15, records=90, interval=0.06)
    for _ in range(5):
        await asyncio.sleep(rng.uniform(0.2, 2.0))
        await rig.gateway.kill()
        rig.fault("gateway killed")  # after the kill: the outbox as the dead process left it
        await rig.gateway.start()
    try:
        await rig.check()
    except AssertionError as exc:
        raise AssertionError(f"{exc} (HOMEWATCH_FAULT_SEED={seed})") from None


@pytest.mark.parametrize("mode", ["reset", "blackhole"])
async def test_the_network_cut_and_restored(rig, broker, mode):
    proxy = TcpProxy(broker.host, broker.port)
    await proxy.start()
    try:
        await rig.start(mqtt_url=proxy.url, meters=3, cuffs=1, records=80, interval=0.08)
        await asyncio.sleep(2.0)
        for outage in (3.5, 2.0):
            await proxy.cut(mode)
            rig.fault(f"network {mode}")
            await asyncio.sleep(outage)
            proxy.restore()
            await asyncio.sleep(1.5)
        await rig.check()
    finally:
        await proxy.close()
