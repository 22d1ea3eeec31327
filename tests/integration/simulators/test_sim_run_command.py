"""``homewatch sim run --scenario FILE`` as an operator runs it: the truth file is written, the
run plays with progress on stderr, and the scenario's devices are reachable over TCP for a
gateway in another process (``gateway scan``) until the run is interrupted."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from pathlib import Path

from device_simulators.truth import read_truth

HOMEWATCH = [sys.executable, "-m", "homewatch"]

SCENARIO = """
[scenario]
name = "two"
seed = 4
days = 2

[[patients]]
kind = "hypertension and diabetes"
count = 2
conditions = ["I10", "E11.9"]
blood_pressure = { systolic = 145, diastolic = 90 }
glucose = { fasting = 7.0 }

[[patients.devices]]
type = "cuff"
clock = true
times = ["07:00", "20:00"]
duplicates = 2

[[patients.devices]]
type = "meter"
times = ["07:30"]

[[unknown_devices]]
type = "cuff"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def read_until(stream: asyncio.StreamReader, marker: str, seen: list[str]) -> None:
    while True:
        line = (await stream.readline()).decode()
        if not line:
            raise AssertionError("sim run ended early:\n" + "".join(seen[-30:]))
        seen.append(line)
        if marker in line:
            return


async def test_sim_run_plays_a_scenario_file_and_serves_its_devices(tmp_path: Path) -> None:
    scenario, truth = tmp_path / "two.toml", tmp_path / "truth.jsonl"
    scenario.write_text(SCENARIO, encoding="utf-8")
    port = free_port()
    sim = await asyncio.create_subprocess_exec(
        *HOMEWATCH,
        "sim",
        "run",
        "--scenario",
        str(scenario),
        "--speed",
        "1000000",
        "--truth",
        str(truth),
        "--tcp-port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert sim.stderr is not None
    log: list[str] = []
    try:
        await asyncio.wait_for(read_until(sim.stderr, "readings taken (", log), 60)
        scan = await asyncio.create_subprocess_exec(
            *HOMEWATCH,
            "gateway",
            "scan",
            "--duration",
            "3",
            "--json",
            "--ble-transport",
            f"tcp-client:127.0.0.1:{port}",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(scan.communicate(), 60)
        assert scan.returncode == 0, err.decode()
    finally:
        sim.send_signal(signal.SIGINT)
        rest = await asyncio.wait_for(sim.communicate(), 30)
    assert sim.returncode == 0, "".join(log) + rest[1].decode()
    lines = read_truth(truth)
    devices = [line for line in lines if line["type"] == "device"]
    total = sum(d["measurements"] for d in devices)
    assert total == 2 * 2 * 4 + 2 * 2  # cuffs: 4 a day, meters: 1 a day, two days
    text = "".join(log)
    assert f"all {total} readings taken" in text
    assert "p-0002 measures with device Homewatch Simulated/GL-Sim 1/SIM-GL-0002" in text
    found = {d["name"]: d["services"] for d in json.loads(out)}
    assert found == {
        "BP-Sim 0001": ["blood pressure"],
        "BP-Sim 0002": ["blood pressure"],
        "GL-Sim 0001": ["glucose"],
        "GL-Sim 0002": ["glucose"],
        "BP-Other 01": ["blood pressure"],
    }
