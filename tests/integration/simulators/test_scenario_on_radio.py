"""A small scenario (2 patients, 2 days, cuff + meter, with faults) played over a real bumble
radio: the devices hold exactly what the truth file says they produced, and what bleak reads
back from them is the generated readings, byte for byte where it matters.

No gateway is connected while the run plays, so every record stays in the devices' memory;
bleak then drains the cuffs (indications) and counts and fetches the meters' records (RACP).
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bleak import BleakClient, BleakScanner
from bleak.uuids import normalize_uuid_16

from device_simulators.clock import VirtualClock
from device_simulators.devices import DeviceSpec
from device_simulators.generate import Generated, generate
from device_simulators.radio import VirtualRadio
from device_simulators.readings import BloodPressureValues
from device_simulators.runner import PlayProgress, devices_on_radio, play
from device_simulators.scenario import parse_scenario
from device_simulators.sim_time import SimulationTime
from device_simulators.truth import read_truth
from gateway.bleak_bumble import BumbleCentral
from gateway.codec import BloodPressureMeasurement
from gateway.glucose_transfer import TransferInterruptedError, count_records, fetch_records

TEST_TIMEOUT = 60.0
CONNECT_TIMEOUT = 5.0
FETCH_TIMEOUT = 10.0
BPM_UUID = normalize_uuid_16(0x2A35)
#: Two days in about a tenth of a second.
SPEED = 2_000_000.0

SMALL = """
[scenario]
name = "small"
seed = 11
days = 2
timezone = "Europe/Moscow"

[[patients]]
kind = "hypertension and diabetes"
count = 2
programme = "cardiology"
conditions = ["I11.9", "E11.9"]
blood_pressure = { systolic = [150, 5], diastolic = [92, 3] }
glucose = { fasting = [7.5, 0.5], meal_rise = 3.5 }
artefacts = { movement = 0.1, loose_cuff = 0.1, duplicate_press = 0.1 }

[[patients.devices]]
type = "cuff"
clock = true
times = ["07:00", "20:00"]
duplicates = 2
jitter_minutes = 10

[[patients.devices]]
type = "meter"
clock = true
times = ["07:30", "21:00"]
meals = ["fasting", "postprandial"]
tag_probability = 0.8
control_solution_every_days = 1

[[patients.events]]
kind = "hypertensive_crisis"
members = [1]
day = 1
time = "12:00"

[[patients.events]]
kind = "hypoglycaemia"
members = [2]
day = 0
time = "16:00"

[[patients.events]]
kind = "resend"
members = [1]
day = 1
time = "08:00"
records = 2

[[patients.events]]
kind = "out_of_range"
device = "meter"
members = [2]
day = 1
time = "00:00"

[[patients.events]]
kind = "clock_drift"
device = "cuff"
members = [2]
offset_minutes = 42
drift_ppm = 80

[[patients.events]]
kind = "low_battery"
device = "cuff"
day = 1
time = "09:00"

[[patients.events]]
kind = "link_drop"
device = "meter"
members = [1]
day = 1
time = "06:00"
records = 2

[[patients.events]]
kind = "link_drop"
device = "cuff"
members = [2]
day = 1
time = "06:00"
records = 2

[[unknown_devices]]
type = "cuff"
"""


async def wait_until(predicate: Callable[[], bool], within: float) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.fixture
def run(tmp_path: Path) -> tuple[Generated, Path]:
    scenario = parse_scenario(SMALL, "small.toml")
    # Two days that ended a minute ago: the virtual clock runs them at SPEED.
    start = datetime.now(UTC) - timedelta(days=2, minutes=1)
    run = generate(scenario, start)
    truth = tmp_path / "truth.jsonl"
    run.write_truth(truth)
    return run, truth


async def test_devices_hold_what_the_truth_file_counts(run: tuple[Generated, Path]) -> None:
    generated, truth_path = run
    truth = read_truth(truth_path)
    counts = {line["device_key"]: line for line in truth if line["type"] == "device"}
    assert len(counts) == 5  # 2 cuffs, 2 meters, 1 device of nobody
    assert sum(c["resent"] for c in counts.values()) == 2
    assert sum(c["labels"].get("control_solution", 0) for c in counts.values()) >= 2
    async with asyncio.timeout(TEST_TIMEOUT), VirtualRadio() as radio:
        time = SimulationTime(generated.start)
        scenario = generated.scenario
        async with devices_on_radio(
            radio, generated.devices, timezone=scenario.timezone, time=time
        ) as live:
            clock = VirtualClock(generated.start, SPEED)
            reports: list[PlayProgress] = []
            progress = await play(generated, live, clock, on_progress=reports.append)
            assert progress.done and progress.errors == 0
            assert progress.taken == generated.reading_count()
            assert reports and reports[-1].taken == progress.total
            for key, peripheral in live.peripherals.items():
                assert peripheral.stored_count == counts[key]["records"], key
            assert progress.records == {
                key: c["records"] for key, c in counts.items() if c["records"]
            }
            async with BumbleCentral(await radio.central_device()) as central:
                for key, peripheral in live.peripherals.items():
                    spec = live.specs[key]
                    if spec.patient_id is None:
                        continue
                    device = await BleakScanner.find_device_by_filter(
                        lambda _d, adv, name=spec.identity.name: adv.local_name == name,
                        timeout=5.0,
                        backend=central.scanner_backend,
                    )
                    assert device is not None, f"{spec.identity.name} not found"
                    client = BleakClient(
                        device, timeout=CONNECT_TIMEOUT, backend=central.client_backend
                    )
                    async with client:
                        if spec.type == "meter":
                            await check_meter(client, generated, spec, counts[key]["records"])
                        else:
                            await check_cuff(client, generated, spec, counts[key]["records"])
                    if spec.type == "cuff":
                        assert peripheral.stored_count == 0  # all confirmed, memory empty


async def check_meter(
    client: BleakClient, generated: Generated, spec: DeviceSpec, records: int
) -> None:
    assert await count_records(client, None) == records
    if any(f.kind == "link_drop" for f in spec.faults):
        # The scenario drops this meter's link after 2 records of its next report.
        with pytest.raises(TransferInterruptedError, match="after 2 record"):
            await fetch_records(client, None, timeout=FETCH_TIMEOUT)
        await client.connect()
    fetched = await fetch_records(client, None, timeout=FETCH_TIMEOUT)
    readings = generated.readings[spec.key]
    assert len(fetched) == len(readings)
    for record, reading in zip(fetched, readings, strict=True):
        measurement, context = reading.glucose()
        assert record.measurement.concentration == measurement.concentration
        assert record.measurement.is_control_solution == reading.values.control_solution
        assert (record.context is not None) == (context is not None)
        # No gateway set the clock: the stamp is the generated device time.
        assert record.measurement.measured_at_device() == reading.device_time


async def check_cuff(
    client: BleakClient, generated: Generated, spec: DeviceSpec, records: int
) -> None:
    received: list[bytes] = []

    def on_measurement(_characteristic: object, data: bytearray) -> None:
        received.append(bytes(data))

    await client.start_notify(BPM_UUID, on_measurement)
    if any(f.kind == "link_drop" for f in spec.faults):
        # The scenario drops this cuff's link during its next transfer, after 2 records: the
        # records not yet confirmed stay in the cuff and come at the next connection.
        await wait_until(lambda: not client.is_connected, within=10.0)
        assert 2 <= len(received) < records
        await client.connect()
        await client.start_notify(BPM_UUID, on_measurement)
    want = expected(generated, spec)
    await wait_until(lambda: want <= set(received), within=20.0)
    await asyncio.sleep(0.2)  # nothing more arrives
    readings = generated.readings[spec.key]
    distinct = list(dict.fromkeys(received))
    assert len(distinct) == len(readings)  # the re-sent records are byte-identical copies
    assert len(received) >= records
    for payload, reading in zip(distinct, readings, strict=True):
        m = BloodPressureMeasurement.from_bytes(payload)
        assert isinstance(reading.values, BloodPressureValues)
        assert m.in_mmhg() == reading.blood_pressure().in_mmhg()
        assert m.time_stamp is not None
        assert m.time_stamp.to_datetime() == reading.device_time


def expected(generated: Generated, spec: DeviceSpec) -> set[bytes]:
    """The payloads the cuff holds: one per generated reading (no quirks in this scenario)."""
    return {bytes(r.blood_pressure()) for r in generated.readings[spec.key]}
