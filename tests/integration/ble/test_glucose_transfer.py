"""Glucose RACP transfer (gateway.glucose_transfer) against the glucometer simulator, over a real
bumble link, through bleak's public API only. Every wait is bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakGATTProtocolError
from bleak.uuids import normalize_uuid_16

from device_simulators.glucometer import ATT_CCCD_IMPROPERLY_CONFIGURED, Glucometer, MeterIdentity
from device_simulators.radio import VirtualRadio
from gateway.bleak_bumble import BumbleCentral
from gateway.codec.date_time import DateTime
from gateway.codec.glucose import GlucoseMeasurement, GlucoseType, SampleLocation
from gateway.codec.glucose_context import GlucoseMeasurementContext, Meal
from gateway.codec.ieee11073 import SFloat
from gateway.codec.racp import RacpOpCode, RacpRequest, RacpResponseValue
from gateway.glucose_transfer import (
    RACP_UUID,
    GlucoseRecord,
    RacpResponseError,
    TransferInterruptedError,
    TransferStats,
    TransferTimeoutError,
    count_records,
    fetch_records,
    report_records,
)
from tests.integration.ble.ble_support import TEST_TIMEOUT

METER_IDENTITY = MeterIdentity(
    name="HW-GL 01",
    manufacturer="Homewatch Devices",
    model="HW-GLU-200",
    serial_number="SN-GL-0042",
    firmware_revision="2.0.1",
)
GLS_UUID = normalize_uuid_16(0x1808)
CONNECT_TIMEOUT = 5.0
FETCH_TIMEOUT = 5.0


def measurement(minute: int, mg_per_dl: int) -> GlucoseMeasurement:
    """A capillary-plasma finger reading; the concentration goes on the wire in kg/L."""
    return GlucoseMeasurement(
        sequence_number=0,  # the meter assigns it
        base_time=DateTime(2026, 3, 14, 8, minute, 0),
        time_offset=0,
        concentration=SFloat.from_value(Decimal(mg_per_dl) / 100_000, exponent=-5),
        sample_type=GlucoseType.CAPILLARY_PLASMA,
        sample_location=SampleLocation.FINGER,
    )


@pytest.fixture
async def meter(radio: VirtualRadio) -> AsyncIterator[Glucometer]:
    meter = Glucometer(await radio.peripheral_device(METER_IDENTITY.name), METER_IDENTITY)
    async with meter:
        yield meter


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


def sequences(records: list[GlucoseRecord]) -> list[int]:
    return [record.sequence_number for record in records]


async def test_count_and_fetch_all_records(central: BumbleCentral, meter: Glucometer) -> None:
    added = [meter.add_record(measurement(i, 90 + i)) for i in range(5)]
    assert added == [0, 1, 2, 3, 4]
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find_meter(central), central) as client:
            assert await count_records(client, None) == 5
            assert await count_records(client, 3) == 2
            records = await fetch_records(client, None, timeout=FETCH_TIMEOUT)
    assert sequences(records) == added
    for index, record in enumerate(records):
        assert record.context is None
        assert bytes(record.measurement) == record.raw
        assert record.measurement.concentration_mg_per_dl() == pytest.approx(90 + index)
        assert record.measurement.base_time == DateTime(2026, 3, 14, 8, index, 0)


async def test_incremental_fetch_returns_only_new_records(
    central: BumbleCentral, meter: Glucometer
) -> None:
    for i in range(3):
        meter.add_record(measurement(i, 100 + i))
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find_meter(central), central) as client:
            first = await fetch_records(client, None, timeout=FETCH_TIMEOUT)
            assert sequences(first) == [0, 1, 2]
            new = [meter.add_record(measurement(10 + i, 120 + i)) for i in range(2)]
            since = first[-1].sequence_number + 1
            assert await count_records(client, since) == 2
            second = await fetch_records(client, since, timeout=FETCH_TIMEOUT)
            assert sequences(second) == new == [3, 4]
            assert [r.measurement.concentration_mg_per_dl() for r in second] == pytest.approx(
                [120, 121]
            )
            # Nothing newer: a normal, empty completion.
            assert await fetch_records(client, 5, timeout=FETCH_TIMEOUT) == []
            assert meter.racp_requests[-1] == bytes.fromhex("0103010500")


async def test_no_records_found_is_an_empty_list(central: BumbleCentral, meter: Glucometer) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find_meter(central), central) as client:
            assert await count_records(client, None) == 0
            assert await fetch_records(client, None, timeout=FETCH_TIMEOUT) == []
            assert client.is_connected


async def test_contexts_are_merged_with_their_measurements(
    central: BumbleCentral, meter: Glucometer
) -> None:
    meal = GlucoseMeasurementContext(sequence_number=0, meal=Meal.POSTPRANDIAL)
    fasting = GlucoseMeasurementContext(sequence_number=0, meal=Meal.FASTING)
    meter.add_record(measurement(0, 95), fasting)
    meter.add_record(measurement(1, 140))
    meter.add_record(measurement(2, 180), meal)
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find_meter(central), central) as client:
            records = await fetch_records(client, None, timeout=FETCH_TIMEOUT)
    assert sequences(records) == [0, 1, 2]
    assert [r.measurement.context_follows for r in records] == [True, False, True]
    contexts = [r.context for r in records]
    assert contexts[1] is None and records[1].raw_context is None
    assert contexts[0] is not None and contexts[0].sequence_number == 0
    assert contexts[0].meal is Meal.FASTING
    assert contexts[2] is not None and contexts[2].sequence_number == 2
    assert contexts[2].meal is Meal.POSTPRANDIAL
    assert records[2].raw_context == bytes(contexts[2])


async def test_link_drop_mid_transfer_then_resume_from_high_water_mark(
    central: BumbleCentral, meter: Glucometer
) -> None:
    added = [meter.add_record(measurement(i, 80 + i)) for i in range(8)]
    meter.drop_link_after(3)
    async with asyncio.timeout(TEST_TIMEOUT):
        device = await find_meter(central)
        async with connect(device, central) as client:
            with pytest.raises(TransferInterruptedError) as caught:
                await fetch_records(client, None, timeout=FETCH_TIMEOUT)
            assert not client.is_connected
        partial = caught.value.records
        assert sequences(partial) == added[:3]
        assert caught.value.high_water_mark == 2

        async with connect(await find_meter(central), central) as client:
            rest = await fetch_records(
                client, caught.value.high_water_mark + 1, timeout=FETCH_TIMEOUT
            )
    assert sequences(partial + rest) == added  # no loss, no duplicate
    assert all(bytes(r.measurement) == r.raw for r in partial + rest)


async def test_unsupported_requests_get_their_response_code(
    central: BumbleCentral, meter: Glucometer
) -> None:
    meter.add_record(measurement(0, 100))
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find_meter(central), central) as client:
            with pytest.raises(RacpResponseError) as op_code:
                await report_records(
                    client, RacpRequest.delete_all_records(), timeout=FETCH_TIMEOUT
                )
            assert op_code.value.request_op_code is RacpOpCode.DELETE_STORED_RECORDS
            assert op_code.value.response_code is RacpResponseValue.OP_CODE_NOT_SUPPORTED

            with pytest.raises(RacpResponseError) as operator:
                await report_records(
                    client, RacpRequest.report_records_in_range(0, 1), timeout=FETCH_TIMEOUT
                )
            assert operator.value.response_code is RacpResponseValue.OPERATOR_NOT_SUPPORTED

            with pytest.raises(RacpResponseError) as operand:
                await report_records(
                    client,
                    RacpRequest.report_records_since(DateTime(2026, 1, 1)),
                    timeout=FETCH_TIMEOUT,
                )
            assert operand.value.response_code is RacpResponseValue.OPERAND_NOT_SUPPORTED
            # The meter is still usable afterwards.
            assert sequences(await fetch_records(client, None, timeout=FETCH_TIMEOUT)) == [0]


async def test_malformed_notification_is_skipped_and_counted(
    central: BumbleCentral, meter: Glucometer
) -> None:
    meter.add_record(measurement(0, 100))
    meter.add_raw_record(bytes.fromhex("0201"))  # truncated: flags + half a sequence number
    meter.add_record(measurement(2, 102))
    stats = TransferStats()
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find_meter(central), central) as client:
            records = await fetch_records(client, None, timeout=FETCH_TIMEOUT, stats=stats)
    assert sequences(records) == [0, 2]
    assert stats.malformed == 1


async def test_timeout_sends_abort_and_raises_with_partial_records(
    central: BumbleCentral, meter: Glucometer
) -> None:
    for i in range(4):
        meter.add_record(measurement(i, 100 + i))
    meter.stall_after(2)
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find_meter(central), central) as client:
            with pytest.raises(TransferTimeoutError) as caught:
                await fetch_records(client, None, timeout=1.0)
            assert sequences(caught.value.records) == [0, 1]
            assert meter.racp_requests[-1] == bytes(RacpRequest.abort())
            # The aborted procedure is over: a new one runs.
            rest = await fetch_records(client, 2, timeout=FETCH_TIMEOUT)
            assert sequences(rest) == [2, 3]


async def test_racp_write_without_indications_is_refused_with_0x81(
    central: BumbleCentral, meter: Glucometer
) -> None:
    meter.add_record(measurement(0, 100))
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find_meter(central), central) as client:
            with pytest.raises(BleakGATTProtocolError) as caught:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await client.write_gatt_char(
                        RACP_UUID, bytes(RacpRequest.report_all_records()), response=True
                    )
            assert caught.value.args[0] == ATT_CCCD_IMPROPERLY_CONFIGURED
            assert meter.racp_requests == []
            # The transfer subscribes first, so it works on the same link.
            assert sequences(await fetch_records(client, None, timeout=FETCH_TIMEOUT)) == [0]
