"""The BLE commands as an operator types them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime

from device_simulators.cohort import demo_cohort, demo_start
from device_simulators.radio import VirtualRadio
from device_simulators.runner import cuffs_on_radio

HOMEWATCH = [sys.executable, "-m", "homewatch"]


def homewatch(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HOMEWATCH, *args], capture_output=True, text=True, timeout=timeout)


def test_ble_decode_prints_one_json_object():
    run = homewatch("ble", "decode", "2A35", "1e780050005d00e807030f081e004800020000")
    assert run.returncode == 0, run.stderr
    decoded = json.loads(run.stdout)
    assert decoded["systolic"]["value"] == 120 and decoded["user_id"] == 2


def test_ble_decode_accepts_the_128_bit_uuid_and_marks_specials():
    run = homewatch("ble", "decode", "00002a35-0000-1000-8000-00805f9b34fb", "0478005000ff074800")
    assert run.returncode == 0, run.stderr
    mean = json.loads(run.stdout)["mean_arterial_pressure"]
    assert (mean["value"], mean["special"]) == (None, "NaN")


def test_ble_decode_malformed_input_is_exit_2_with_one_line():
    for args in (("2A35", "1e7800"), ("2A35", "zz"), ("2AFF", "00")):
        run = homewatch("ble", "decode", *args)
        assert run.returncode == 2, (args, run.stdout, run.stderr)
        assert run.stdout == ""
        assert len(run.stderr.strip().splitlines()) == 1 and run.stderr.startswith("error: ")


async def test_gateway_scan_lists_simulated_cuffs_over_tcp():
    cohort = demo_cohort(demo_start(datetime.now(UTC)))
    async with VirtualRadio() as radio, cuffs_on_radio(radio, cohort):
        port = await radio.serve_tcp()
        process = await asyncio.create_subprocess_exec(
            *HOMEWATCH, "gateway", "scan", "--duration", "3", "--json",
            "--ble-transport", f"tcp-client:127.0.0.1:{port}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    devices = json.loads(out)
    assert sorted(d["name"] for d in devices) == sorted(m.cuff.name for m in cohort)
    for d in devices:
        assert d["services"] == ["blood pressure"]
        assert d["address"].count(":") == 5 and isinstance(d["rssi"], int)
