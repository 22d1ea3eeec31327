"""The gateway reading glucose meters: incremental RACP transfer with a durable high-water mark,
resume after a dropped link and after a restart, reset and wrap of the meter's numbering, the
quirks that concern meters, and the meter's clock. Real parts throughout: bumble simulators,
bleak through the bumble backend, the SQLite outbox, Mosquitto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from device_simulators.device_clock import DeviceClock
from device_simulators.glucometer import Glucometer, MeterIdentity
from device_simulators.vendor_quirks import (
    GLUCOSE_CONTROL_SOLUTION_MODEL,
    GLUCOSE_DATE_TIME_CLOCK_MODEL,
    GLUCOSE_DESCENDING_SEQUENCE_MODEL,
    SIMULATED_MANUFACTURER,
)
from gateway.codec.date_time import DateTime
from gateway.codec.glucose import GlucoseMeasurement, GlucoseType, SampleLocation
from gateway.codec.glucose_context import GlucoseMeasurementContext, Meal
from gateway.codec.ieee11073 import SFloat
from gateway.outbox import Outbox
from homewatch.wire import ClockStatus, GlucoseReading, TimeSource
from tests.integration.gateway.ble_gateway_support import eventually, running_gateway

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def identity(model: str = "GL-Sim 1", serial: str = "GL-0001") -> MeterIdentity:
    return MeterIdentity(f"Meter {serial}", SIMULATED_MANUFACTURER, model, serial, "1.0")


def measurement(minutes_ago: int, mg_per_dl: int, kind=GlucoseType.CAPILLARY_PLASMA):
    at = (NOW - timedelta(minutes=minutes_ago)).replace(tzinfo=None)
    return GlucoseMeasurement(
        sequence_number=0,  # the meter assigns it
        base_time=DateTime.from_datetime(at),
        time_offset=0,
        concentration=SFloat.from_value(Decimal(mg_per_dl) / 100_000, exponent=-5),
        sample_type=kind,
        sample_location=SampleLocation.FINGER
        if kind is not GlucoseType.CONTROL_SOLUTION
        else SampleLocation.CONTROL_SOLUTION,
    )


@pytest.fixture
def start_meter(start_simulator):
    async def start(identity: MeterIdentity, **options) -> Glucometer:
        return await start_simulator(Glucometer, identity, **options)

    return start


def sequences(readings: list[GlucoseReading]) -> list[int]:
    return sorted(r.sequence_number for r in readings)


async def test_first_contact_reads_every_record_with_context_then_only_new_ones(
    start_meter, central, mqtt_broker, topic_root, tmp_path
):
    meter = await start_meter(identity())
    meter.add_record(measurement(90, 95))
    meter.add_record(
        measurement(60, 160), GlucoseMeasurementContext(sequence_number=0, meal=Meal.POSTPRANDIAL)
    )
    meter.add_record(measurement(30, 54))
    async with running_gateway(central, mqtt_broker, topic_root, tmp_path / "o.db") as gw:
        await eventually(lambda: len(gw.readings) == 3)
        first = {r.sequence_number: r for r in gw.readings}
        assert first[0].values.mg_per_dl.value == pytest.approx(95)
        assert first[0].values.mmol_per_l.value == pytest.approx(95 / 18.016, rel=1e-6)
        assert first[1].context is not None and first[1].context.meal == "postprandial"
        assert first[1].raw_context is not None
        assert first[2].measured_at == NOW - timedelta(minutes=30)
        # The meter is read again after its rest: only what is new comes over.
        meter.add_record(measurement(5, 120))
        await eventually(lambda: len(gw.readings) == 4)
        assert gw.readings[-1].sequence_number == 3
        # The marked record itself is re-read to check the numbering: one duplicate, no more.
        await eventually(lambda: gw.gateway.counters.duplicates >= 1)
    requests = [r.hex() for r in meter.racp_requests]
    assert requests[0] == "0101"  # report all records, first contact
    assert "0403010200" in requests  # number of records >= #2 (the mark), later sessions
    assert gw.gateway.counters.queued == 4


async def test_link_drop_mid_transfer_and_restart_lose_and_duplicate_nothing(
    start_meter, central, mqtt_broker, topic_root, tmp_path
):
    meter = await start_meter(identity(serial="GL-0002"))
    for i in range(6):
        meter.add_record(measurement(100 - i, 90 + i))
    meter.drop_link_after(2)  # the first transfer breaks after two records
    outbox_path = tmp_path / "o.db"
    async with running_gateway(central, mqtt_broker, topic_root, outbox_path) as gw:
        await eventually(lambda: len(gw.readings) == 6)
        assert sequences(gw.readings) == [0, 1, 2, 3, 4, 5]
    async with Outbox(outbox_path) as outbox:
        mark = await outbox.high_water_mark(gw.readings[0].device.device_key)
    assert mark is not None and mark.sequence_number == 5

    # The gateway restarts (same outbox); the meter measured twice meanwhile.
    meter.add_record(measurement(3, 101))
    meter.add_record(measurement(2, 102))
    async with running_gateway(central, mqtt_broker, topic_root, outbox_path) as gw2:
        await eventually(lambda: len(gw2.readings) == 2)
        assert sequences(gw2.readings) == [6, 7]
    ids = [r.reading_id for r in gw.readings + gw2.readings]
    assert len(set(ids)) == 8


async def test_a_reset_meter_is_read_whole_and_its_new_records_are_not_lost(
    start_meter, central, mqtt_broker, topic_root, tmp_path
):
    meter = await start_meter(identity(serial="GL-0003"))
    for i in range(3):
        meter.add_record(measurement(200 - i, 100 + i))
    async with running_gateway(central, mqtt_broker, topic_root, tmp_path / "o.db") as gw:
        await eventually(lambda: len(gw.readings) == 3)
        meter.reset_memory()  # numbering restarts: the new records are #0 and #1 again
        meter.add_record(measurement(20, 140))
        meter.add_record(measurement(10, 141))
        await eventually(lambda: len(gw.readings) == 5)
    new = gw.readings[3:]
    assert sequences(new) == [0, 1]
    assert sorted(r.values.mg_per_dl.value for r in new) == pytest.approx([140, 141])


async def test_numbering_that_wraps_past_65535_is_followed(
    start_meter, central, mqtt_broker, topic_root, tmp_path
):
    meter = await start_meter(identity(serial="GL-0004"), first_sequence_number=65534)
    meter.add_record(measurement(50, 100))  # 65534
    meter.add_record(measurement(40, 101))  # 65535
    async with running_gateway(central, mqtt_broker, topic_root, tmp_path / "o.db") as gw:
        await eventually(lambda: len(gw.readings) == 2)
        meter.add_record(measurement(30, 102))  # 0
        meter.add_record(measurement(20, 103))  # 1
        await eventually(lambda: len(gw.readings) == 4)
        meter.add_record(measurement(10, 104))  # 2: the mark has moved past the wrap
        await eventually(lambda: len(gw.readings) == 5)
    assert [r.sequence_number for r in gw.readings] == [65534, 65535, 0, 1, 2]
    assert gw.gateway.counters.queued == 5


async def test_meter_numbering_backwards_is_read_whole_each_time(
    start_meter, central, mqtt_broker, topic_root, tmp_path
):
    meter = await start_meter(
        identity(GLUCOSE_DESCENDING_SEQUENCE_MODEL, "GL-0005"),
        sequence_numbers="descending",
    )
    meter.add_record(measurement(50, 100))  # 65535
    meter.add_record(measurement(40, 101))  # 65534
    async with running_gateway(central, mqtt_broker, topic_root, tmp_path / "o.db") as gw:
        await eventually(lambda: len(gw.readings) == 2)
        meter.add_record(measurement(30, 102))  # 65533: a high-water mark would miss it
        await eventually(lambda: len(gw.readings) == 3)
    assert [r.sequence_number for r in gw.readings][-1] == 65533
    assert all(r.hex() == "0101" for r in meter.racp_requests)  # report all, every time


async def test_control_solution_records(start_meter, central, mqtt_broker, topic_root, tmp_path):
    plain = await start_meter(identity(serial="GL-0006"))
    quirky = await start_meter(identity(GLUCOSE_CONTROL_SOLUTION_MODEL, "GL-0007"))
    for meter in (plain, quirky):
        meter.add_record(measurement(30, 110, GlucoseType.CONTROL_SOLUTION))
        meter.add_record(measurement(20, 120))
    async with running_gateway(central, mqtt_broker, topic_root, tmp_path / "o.db") as gw:
        await eventually(lambda: len(gw.readings) == 3)
        await eventually(lambda: len(plain.racp_requests) > 1 and len(quirky.racp_requests) > 1)
    by_serial = {}
    for r in gw.readings:
        by_serial.setdefault(r.device.serial_number, []).append(r)
    # An ordinary meter's control test goes out flagged (never evaluated as a patient sample) ...
    assert [r.control_solution for r in by_serial["GL-0006"]] == [True, False]
    # ... the quirk table drops it at the gateway for a meter that mislabels it.
    assert [r.control_solution for r in by_serial["GL-0007"]] == [False]


@pytest.mark.parametrize(
    ("model", "where"), [("GL-Sim 1", "2A2B"), (GLUCOSE_DATE_TIME_CLOCK_MODEL, "2A08")]
)
async def test_a_drifted_meter_clock_is_corrected_and_set(
    start_meter, central, mqtt_broker, topic_root, tmp_path, model, where
):
    clock = DeviceClock(offset=timedelta(hours=2))  # two hours ahead (UTC device zone)
    meter = await start_meter(
        identity(model, f"GL-CLK-{where}"), clock=clock, clock_characteristic=where
    )
    stamped = clock.now()  # the meter stamps with its own clock
    meter.add_record(
        GlucoseMeasurement(
            sequence_number=0,
            base_time=DateTime.from_datetime(stamped),
            time_offset=-15,  # the user-facing time is 15 minutes before the base time
            concentration=SFloat.from_value(Decimal("0.0011"), exponent=-4),
            sample_type=GlucoseType.CAPILLARY_PLASMA,
            sample_location=SampleLocation.FINGER,
        )
    )
    async with running_gateway(central, mqtt_broker, topic_root, tmp_path / "o.db") as gw:
        [reading] = await eventually(lambda: gw.readings)
        await eventually(lambda: clock.writes)
    assert reading.device_clock.status is ClockStatus.CORRECTED
    assert reading.device_clock.offset_seconds == pytest.approx(7200, abs=5)
    assert reading.time_source is TimeSource.DEVICE_CORRECTED
    assert reading.device_time == stamped.replace(microsecond=0) - timedelta(minutes=15)
    expected = datetime.now(UTC) - timedelta(minutes=15)
    assert abs(reading.measured_at - expected) < timedelta(seconds=30)
    # The meter's clock now shows the gateway's time.
    assert abs(clock.now() - datetime.now(UTC).replace(tzinfo=None)) < timedelta(seconds=5)


async def test_readings_from_an_unset_meter_clock_are_kept_and_marked(
    start_meter, central, mqtt_broker, topic_root, tmp_path
):
    clock = DeviceClock(unset=True)
    meter = await start_meter(identity(serial="GL-UNSET"), clock=clock)
    meter.add_record(
        GlucoseMeasurement(
            sequence_number=0,
            base_time=DateTime.from_datetime(clock.now()),
            concentration=SFloat.from_value(Decimal("0.0009"), exponent=-4),
            sample_type=GlucoseType.CAPILLARY_PLASMA,
            sample_location=SampleLocation.FINGER,
        )
    )
    async with running_gateway(central, mqtt_broker, topic_root, tmp_path / "o.db") as gw:
        [reading] = await eventually(lambda: gw.readings)
        await eventually(lambda: clock.writes)
    assert reading.device_clock.status is ClockStatus.UNSET
    assert reading.time_source is TimeSource.RECEIVED
    assert reading.measured_at == reading.received_at
    assert reading.device_time is not None and reading.device_time.year == 2000
    assert not clock.is_unset


async def test_an_empty_meter_a_stalled_transfer_and_a_malformed_record(
    start_meter, central, mqtt_broker, topic_root, tmp_path
):
    meter = await start_meter(identity(serial="GL-EDGE"))
    outbox_path = tmp_path / "o.db"
    async with running_gateway(
        central, mqtt_broker, topic_root, outbox_path, transfer_timeout_seconds=1.0
    ) as gw:
        # No records found is a normal, complete transfer: the meter is asked again later.
        await eventually(lambda: len(meter.racp_requests) >= 2)
        assert gw.readings == []
        meter.add_record(measurement(30, 100))
        meter.add_raw_record(bytes.fromhex("0b"))  # truncated: flags only
        meter.add_record(measurement(20, 101))
        meter.add_record(measurement(10, 102))
        meter.stall_after(2)  # the meter hangs after two records: time-out, abort, resume
        await eventually(lambda: len(gw.readings) == 3)
        assert "0300" in [r.hex() for r in meter.racp_requests]  # the abort
    assert [r.values.mg_per_dl.value for r in gw.readings] == pytest.approx([100, 101, 102])
    async with Outbox(outbox_path) as outbox:
        assert await outbox.rejected_count() == 1  # kept once, though read more than once
