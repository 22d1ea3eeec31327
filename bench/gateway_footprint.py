"""Footprint of the gateway process with 10 simulated glucose meters: resident memory and CPU at
idle and during a full sync (every meter's stored records read over RACP, queued and published).

The simulated meters run in a process of their own (``tests/faults/sim_devices.py``), reached
over a bumble controller on TCP, and are reported separately; so is Mosquitto. Baseline, same
run: a Python process that only imports the gateway's modules (the floor the interpreter and
the libraries cost before the gateway does anything). Targets for a Raspberry-Pi-class box:
<= 80 MB resident, < 2 % of one core at idle.

Run: .venv/bin/python bench/gateway_footprint.py [--meters 10] [--stored 500] [--idle 30]
     [--advertising-interval-ms 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from homewatch.embedded.broker import Mosquitto
from homewatch.wire import readings_topic
from tests.faults.fault_support import (
    GatewayProcess,
    ReadingsTap,
    SimulatorProcess,
    gateway_env,
    produced_keys,
)

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 1e6


class Sampler:
    """CPU share (of one core) and resident memory of processes over a window."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start_cpu = {n: cpu_seconds(p) for n, p in pids.items()}
        self.start = time.monotonic()
        self.peak = {n: rss_mb(p) for n, p in pids.items()}

    def sample(self) -> None:
        for n, p in self.pids.items():
            self.peak[n] = max(self.peak[n], rss_mb(p))

    def report(self, label: str) -> dict[str, tuple[float, float, float]]:
        elapsed = time.monotonic() - self.start
        out = {}
        for n, p in self.pids.items():
            cpu = (cpu_seconds(p) - self.start_cpu[n]) / elapsed * 100
            out[n] = (cpu, rss_mb(p), self.peak[n])
        print(f"{label} ({elapsed:.1f} s):")
        for n, (cpu, rss, peak) in out.items():
            print(
                f"  {n:<22} CPU {cpu:6.2f} % of one core   RSS {rss:6.1f} MB   peak {peak:6.1f} MB"
            )
        return out


async def baseline_rss(modules: str) -> float:
    """A Python process that imports ``modules``, then sleeps."""
    code = f"import time, {modules}; print('ready', flush=True); time.sleep(30)"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    await process.stdout.readline()
    await asyncio.sleep(0.5)
    rss = rss_mb(process.pid)
    process.kill()
    await process.wait()
    return rss


async def main(meters: int, stored: int, idle: float, advertising_ms: float) -> None:
    floor = await baseline_rss("gateway.service, homewatch.cli_gateway, gateway.bleak_bumble")
    bluez_floor = await baseline_rss("gateway.service, homewatch.cli_gateway")
    with tempfile.TemporaryDirectory(prefix="bench-footprint-") as d:
        directory = Path(d)
        broker = Mosquitto()
        endpoint = await asyncio.to_thread(broker.start)
        sim = SimulatorProcess(
            directory,
            meters=meters,
            stored=stored,
            records=0,
            advertising_interval_ms=advertising_ms,
        )
        tap = None
        gateway = None
        try:
            port = await sim.start(timeout=120)
            tap = ReadingsTap(endpoint, readings_topic("gw-bench", "bench"))
            await tap.wait_subscribed()
            expected = produced_keys(sim.produced())
            gateway = GatewayProcess(
                gateway_env(
                    gateway_id="gw-bench",
                    mqtt_url=endpoint.url,
                    topic_root="bench",
                    outbox=directory / "outbox.sqlite3",
                    ble_port=port,
                    # as deployed: meters rest 5 minutes, normal keep-alive and status period
                    meter_rest_seconds=300,
                    mqtt_keepalive_seconds=30,
                    status_interval_seconds=60,
                    batch_size=50,
                    log_format="text",
                ),
                directory / "gateway.log",
            )
            print(
                f"{meters} simulated glucose meters with {stored} stored records each "
                f"({len(expected)} readings to sync), advertising every {advertising_ms:.0f} ms"
            )
            started = time.monotonic()
            await gateway.start()
            pids = {
                "gateway": gateway.pid,
                "simulators (separate)": sim.process.pid,  # type: ignore[union-attr]
            }
            sampler = Sampler(pids)
            while not expected <= tap.received_keys():
                sampler.sample()
                await asyncio.sleep(0.2)
                if time.monotonic() - started > 600:
                    raise TimeoutError("the sync did not finish in 10 minutes")
            sync = sampler.report(f"full sync: {len(expected)} readings read, queued and delivered")
            print(f"  sync rate: {len(expected) / (time.monotonic() - started):,.0f} readings/s")
            await asyncio.sleep(2)  # let the last status go out
            sampler = Sampler(pids)
            end = time.monotonic() + idle
            while time.monotonic() < end:
                sampler.sample()
                await asyncio.sleep(0.5)
            quiet = sampler.report("idle: meters resting, BLE scanning, MQTT keep-alive")
            print(
                "baseline: a Python process that only imports the gateway's modules: "
                f"RSS {floor:6.1f} MB with the bumble backend used here, {bluez_floor:6.1f} MB "
                "without it (a BlueZ deployment never imports bumble)"
            )
            g_sync, g_idle = sync["gateway"], quiet["gateway"]
            print(
                f"gateway vs targets: peak RSS {max(g_sync[2], g_idle[2]):.1f} MB (<= 80), "
                f"{max(g_sync[2], g_idle[2]) / floor:.2f}x the import floor; idle CPU "
                f"{g_idle[0]:.2f} % (< 2)"
            )
        finally:
            if gateway is not None:
                await gateway.stop()
            await sim.stop()
            if tap is not None:
                tap.close()
            await asyncio.to_thread(broker.close)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=10)
    parser.add_argument("--stored", type=int, default=500)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument(
        "--advertising-interval-ms",
        type=float,
        default=1000.0,
        help="how often each meter advertises: the gateway's idle CPU is mostly spent on the "
        "advertisements it hears (the simulators' default is 100 ms)",
    )
    a = parser.parse_args()
    asyncio.run(main(a.meters, a.stored, a.idle, a.advertising_interval_ms))
