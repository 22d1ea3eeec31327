"""Sequence-number faults of real meters, seen by the gateway's RACP transfer through bleak over
a real bumble link: a meter numbering backwards, the uint16 wrap, and a memory reset.
Every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.uuids import normalize_uuid_16

from device_simulators.glucometer import MEMORY_CAPACITY, Glucometer, MeterIdentity
from device_simulators.radio import VirtualRadio
from gateway.bleak_bumble import BumbleCentral
from gateway.codec.date_time import DateTime
from gateway.codec.glucose import GlucoseMeasurement, GlucoseType, SampleLocation
from gateway.codec.ieee11073 import SFloat
from gateway.codec.racp import RacpRequest, RacpResponse, RacpResponseValue, decode_racp
from gateway.glucose_transfer import (
    GLUCOSE_MEASUREMENT_UUID,
    RACP_UUID,
    GlucoseRecord,
    count_records,
    fetch_records,
)
from tests.integration.ble.ble_support import TEST_TIMEOUT

METER_IDENTITY = MeterIdentity("HW-GL 09", "Homewatch Devices", "HW-GLU-200", "SN-GL-9", "2.0.1")
GLS_UUID = normalize_uuid_16(0x1808)
CONNECT_TIMEOUT = 5.0
FETCH_TIMEOUT = 5.0

StartMeter = Callable[..., Awaitable[Glucometer]]


def measurement(minute: int, mg_per_dl: int) -> GlucoseMeasurement:
    return GlucoseMeasurement(
        sequence_number=0,  # the meter assigns it
        base_time=DateTime(2026, 3, 14, 8, minute),
        time_offset=0,
        concentration=SFloat.from_value(Decimal(mg_per_dl) / 100_000, exponent=-5),
        sample_type=GlucoseType.CAPILLARY_PLASMA,
        sample_location=SampleLocation.FINGER,
    )


def sequences(records: list[GlucoseRecord]) -> list[int]:
    return [record.sequence_number for record in records]


async def report_in_arrival_order(
    client: BleakClient, request: RacpRequest
) -> tuple[list[int], RacpResponse]:
    """Run one RACP report with bleak alone: the sequence numbers in the order the meter
    notified them (the gateway's transfer orders its result, this does not), and the response."""
    numbers: list[int] = []
    response: asyncio.Future[RacpResponse] = asyncio.get_running_loop().create_future()

    def on_measurement(_characteristic: object, data: bytearray) -> None:
        numbers.append(GlucoseMeasurement.from_bytes(bytes(data)).sequence_number)

    def on_racp(_characteristic: object, data: bytearray) -> None:
        message = decode_racp(bytes(data))
        if isinstance(message, RacpResponse) and not response.done():
            response.set_result(message)

    await client.start_notify(GLUCOSE_MEASUREMENT_UUID, on_measurement)
    await client.start_notify(RACP_UUID, on_racp)
    try:
        await client.write_gatt_char(RACP_UUID, bytes(request), response=True)
        async with asyncio.timeout(FETCH_TIMEOUT):
            result = await response
    finally:
        await client.stop_notify(RACP_UUID)
        await client.stop_notify(GLUCOSE_MEASUREMENT_UUID)
    return numbers, result


@pytest.fixture
async def start_meter(radio: VirtualRadio) -> AsyncIterator[StartMeter]:
    """Starts the test's meter with the options it is given (stopped at the end of the test)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**options: Any) -> Glucometer:
            device = await radio.peripheral_device(METER_IDENTITY.name)
            meter = Glucometer(device, METER_IDENTITY, **options)
            return await stack.enter_async_context(meter)

        yield start


async def find_meter(central: BumbleCentral) -> BLEDevice:
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: adv.local_name == METER_IDENTITY.name,
        timeout=5.0,
        service_uuids=[GLS_UUID],
        backend=central.scanner_backend,
    )
    assert device is not None, "the meter was not found within 5 s"
    return device


def connect(device: BLEDevice, central: BumbleCentral) -> BleakClient:
    return BleakClient(device, timeout=CONNECT_TIMEOUT, backend=central.client_backend)


async def test_descending_meter_numbers_backwards(
    central: BumbleCentral, start_meter: StartMeter
) -> None:
    meter = await start_meter(sequence_numbers="descending")
    added = [meter.add_record(measurement(i, 100 + i)) for i in range(3)]
    assert added == [0xFFFF, 0xFFFE, 0xFFFD]
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find_meter(central), central) as client:
            # Report-all is in storage order (oldest first), whatever the numbers say.
            numbers, response = await report_in_arrival_order(
                client, RacpRequest.report_all_records()
            )
            assert numbers == added
            assert response.response_code is RacpResponseValue.SUCCESS
            records = await fetch_records(client, None, timeout=FETCH_TIMEOUT)
            assert sorted(sequences(records)) == sorted(added)
            by_number = {r.sequence_number: r.measurement for r in records}
            assert [by_number[n].concentration_mg_per_dl() for n in added] == pytest.approx(
                [100, 101, 102]
            )
            # ">=" compares raw numbers: a collector that resumes after its high-water mark
            # (the last record it got, 0xFFFD) gets old records again and misses the new one.
            new = meter.add_record(measurement(10, 150))
            assert new == 0xFFFC
            assert await count_records(client, None) == 4
            assert await count_records(client, 0xFFFE) == 2
            again, _ = await report_in_arrival_order(
                client, RacpRequest.report_records_greater_or_equal(0xFFFE)
            )
            assert again == [0xFFFF, 0xFFFE]


async def test_descending_numbers_wrap_below_zero(start_meter: StartMeter) -> None:
    meter = await start_meter(sequence_numbers="descending", first_sequence_number=1)
    assert [meter.add_raw_record(b"\x00") for _ in range(3)] == [1, 0, 0xFFFF]


async def test_ascending_numbers_wrap_from_65535_to_0(
    central: BumbleCentral, start_meter: StartMeter
) -> None:
    meter = await start_meter(first_sequence_number=65534)
    added = [meter.add_record(measurement(i, 90 + i)) for i in range(4)]
    assert added == [65534, 65535, 0, 1]
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find_meter(central), central) as client:
            numbers, _ = await report_in_arrival_order(client, RacpRequest.report_all_records())
            assert numbers == added
            records = await fetch_records(client, None, timeout=FETCH_TIMEOUT)
            minutes = {r.sequence_number: r.measurement.base_time.minutes for r in records}
            assert minutes == {65534: 0, 65535: 1, 0: 2, 1: 3}
            # A collector at 65535 whose "+ 1" wraps asks for ">= 0" and gets everything back;
            # one that kept 65534 asks ">= 65535" and misses the wrapped records 0 and 1.
            assert await count_records(client, 0) == 4
            after_wrap, _ = await report_in_arrival_order(
                client, RacpRequest.report_records_greater_or_equal(65535)
            )
            assert after_wrap == [65535]


async def test_reset_memory_restarts_numbering(
    central: BumbleCentral, start_meter: StartMeter
) -> None:
    meter = await start_meter(first_sequence_number=100)
    assert [meter.add_record(measurement(i, 100 + i)) for i in range(3)] == [100, 101, 102]
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find_meter(central), central) as client:
            assert sequences(await fetch_records(client, None, timeout=FETCH_TIMEOUT)) == [
                100,
                101,
                102,
            ]
            meter.reset_memory()
            assert meter.stored_count == 0
            assert await count_records(client, None) == 0
            assert await fetch_records(client, None, timeout=FETCH_TIMEOUT) == []
            restarted = [meter.add_record(measurement(30 + i, 140 + i)) for i in range(2)]
            assert restarted == [100, 101]
            records = await fetch_records(client, None, timeout=FETCH_TIMEOUT)
            assert sequences(records) == restarted
            assert [r.measurement.base_time.minutes for r in records] == [30, 31]
            # The collector's high-water mark (102) now hides the new records.
            assert await fetch_records(client, 103, timeout=FETCH_TIMEOUT) == []


async def test_reset_memory_of_a_descending_meter(start_meter: StartMeter) -> None:
    meter = await start_meter(sequence_numbers="descending")
    meter.add_raw_record(b"\x00")
    meter.add_raw_record(b"\x00")
    meter.reset_memory()
    assert meter.stored_count == 0
    assert meter.add_raw_record(b"\x00") == 0xFFFF


async def test_a_full_memory_is_a_clear_error(start_meter: StartMeter) -> None:
    meter = await start_meter(first_sequence_number=7)
    for _ in range(MEMORY_CAPACITY):
        meter.add_raw_record(b"\x00")
    with pytest.raises(ValueError, match="memory is full"):
        meter.add_raw_record(b"\x00")
    assert meter.stored_count == MEMORY_CAPACITY
    meter.reset_memory()
    assert meter.add_raw_record(b"\x00") == 7


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sequence_numbers": "random"}, "sequence_numbers"),
        ({"first_sequence_number": 65536}, "first_sequence_number"),
        ({"first_sequence_number": -1}, "first_sequence_number"),
        ({"clock_characteristic": "2A2C"}, "clock_characteristic"),
    ],
)
async def test_bad_meter_options_are_refused(
    radio: VirtualRadio, options: dict[str, Any], message: str
) -> None:
    device = await radio.peripheral_device(METER_IDENTITY.name)
    with pytest.raises(ValueError, match=message):
        Glucometer(device, METER_IDENTITY, **options)
