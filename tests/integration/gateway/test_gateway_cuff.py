"""The gateway reading blood-pressure cuffs: stored records on connect ended by a quiet period,
the cuff's clock corrected and set, Intermediate Cuff Pressure as live progress, a cuff that
notifies instead of indicating, a vendor byte-order quirk, and the device allowlist. Real parts:
bumble simulators, bleak through the bumble backend, the SQLite outbox, Mosquitto."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from device_simulators.bp_cuff import BloodPressureCuff, CuffIdentity
from device_simulators.device_clock import DeviceClock
from device_simulators.patients import Measurement
from device_simulators.vendor_quirks import (
    BP_BIG_ENDIAN_MODEL,
    SIMULATED_MANUFACTURER,
    encode_blood_pressure,
)
from gateway.codec import BloodPressureMeasurement, IntermediateCuffPressure, PressureUnit
from gateway.codec.ieee11073 import SFloat
from gateway.quirks import load_quirk_table
from homewatch.wire import ClockStatus, TimeSource, serial_device_key
from tests.integration.gateway.ble_gateway_support import eventually, running_gateway


def identity(serial: str, model: str = "BP-Sim 1") -> CuffIdentity:
    return CuffIdentity(f"Cuff {serial}", SIMULATED_MANUFACTURER, model, serial, "1.0")


def key(cuff: CuffIdentity) -> str:
    return serial_device_key(cuff.manufacturer, cuff.model, cuff.serial_number)


@pytest.fixture
def start_cuff(start_simulator):
    async def start(identity: CuffIdentity, **options) -> BloodPressureCuff:
        return await start_simulator(BloodPressureCuff, identity, **options)

    return start


async def test_stored_records_are_corrected_for_a_drifted_clock_which_is_then_set(
    start_cuff, central, mqtt_broker, topic_root, tmp_path
):
    clock = DeviceClock(offset=-timedelta(hours=3, minutes=7))  # behind the real time
    cuff = await start_cuff(identity("CLK-1"), clock=clock)
    # Two measurements while no gateway listens: the cuff keeps them, stamped by its clock.
    stamps = [clock.now().replace(microsecond=0) - timedelta(minutes=m) for m in (20, 10)]
    for at, systolic in zip(stamps, (131, 133), strict=True):
        await cuff.measure(Measurement(at, systolic, 84, 70).encode())
    assert cuff.stored_count == 2
    async with running_gateway(central, mqtt_broker, topic_root, tmp_path / "o.db") as gw:
        await eventually(lambda: len(gw.readings) == 2)
        await eventually(lambda: clock.writes)  # set once the backlog went quiet
        live_at = clock.now().replace(microsecond=0)
        await cuff.measure(Measurement(live_at, 128, 80, 66).encode())
        await eventually(lambda: len(gw.readings) == 3)
    stored, live = gw.readings[:2], gw.readings[2]
    offset = -(3 * 3600 + 7 * 60)
    for reading, at in zip(stored, stamps, strict=True):
        assert reading.device_time == at
        assert reading.device_clock.status is ClockStatus.CORRECTED
        assert reading.device_clock.offset_seconds == pytest.approx(offset, abs=5)
        assert reading.time_source is TimeSource.DEVICE_CORRECTED
        true_time = at.replace(tzinfo=UTC) - timedelta(seconds=offset)
        assert abs(reading.measured_at - true_time) < timedelta(seconds=5)
    # After the clock was set the cuff stamps the right time, and nothing is corrected.
    assert live.device_clock.status is ClockStatus.SYNCHRONISED
    assert live.time_source is TimeSource.DEVICE
    assert abs(live.measured_at - datetime.now(UTC)) < timedelta(seconds=30)


async def test_cuff_pressure_is_live_progress_and_a_notifying_cuff_is_read_too(
    start_cuff, central, mqtt_broker, topic_root, tmp_path
):
    cuff = await start_cuff(
        identity("ICP-1"), intermediate_cuff_pressure=True, measurement_property="notify"
    )
    inflation = [
        bytes(IntermediateCuffPressure(PressureUnit.MMHG, SFloat.from_value(p, exponent=0)))
        for p in (40, 90, 150, 185)
    ]
    async with running_gateway(central, mqtt_broker, topic_root, tmp_path / "o.db") as gw:
        # Wait until the gateway listens (the backlog period is over) before measuring live.
        await eventually(lambda: cuff.is_connected)
        await asyncio.sleep(1.0)
        measured = datetime.now(UTC).replace(microsecond=0)
        delivered = await cuff.measure(
            Measurement(measured, 142, 91, 77).encode(), inflation=inflation
        )
        [reading] = await eventually(lambda: gw.readings)
    assert delivered
    assert [p for _key, p in gw.progress] == [40, 90, 150, 185]
    assert (reading.values.systolic.value, reading.values.diastolic.value) == (142, 91)


async def test_vendor_byte_order_quirk_is_applied_by_model(
    start_cuff, central, mqtt_broker, topic_root, tmp_path
):
    quirky = identity("BE-1", BP_BIG_ENDIAN_MODEL)
    quirks = load_quirk_table().for_device(quirky.manufacturer, quirky.model)
    assert quirks.bp_big_endian_pulse_and_status
    cuff = await start_cuff(quirky)
    measured = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    standard = BloodPressureMeasurement.from_bytes(Measurement(measured, 150, 95, 104).encode())
    on_air = encode_blood_pressure(standard, quirks)
    assert on_air != bytes(standard)
    await cuff.measure(on_air)
    async with running_gateway(central, mqtt_broker, topic_root, tmp_path / "o.db") as gw:
        [reading] = await eventually(lambda: gw.readings)
    assert reading.values.pulse_rate is not None and reading.values.pulse_rate.value == 104
    assert reading.values.systolic.value == 150
    assert reading.raw == on_air.hex()  # the audit copy is what the cuff sent


@pytest.mark.parametrize("by", ["device key", "address"])
async def test_only_allowlisted_devices_are_read(
    start_cuff, central, mqtt_broker, topic_root, tmp_path, by
):
    mine, neighbours = identity("MINE-1"), identity("NEXT-DOOR-1")
    my_cuff = await start_cuff(mine)
    their_cuff = await start_cuff(neighbours)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    await my_cuff.measure(Measurement(at, 120, 80, 60).encode())
    await their_cuff.measure(Measurement(at, 170, 100, 90).encode())
    allowed = key(mine) if by == "device key" else my_cuff.address
    async with running_gateway(
        central, mqtt_broker, topic_root, tmp_path / "o.db", allowed_devices=[allowed]
    ) as gw:
        [reading] = await eventually(lambda: gw.readings)
        await asyncio.sleep(1.5)  # time enough for the neighbour's cuff to be read, were it
    assert reading.device.device_key == key(mine)
    assert len(gw.readings) == 1
    assert their_cuff.stored_count == 1  # never handed over to this gateway
