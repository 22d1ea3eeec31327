"""Simulated device clocks: ``DeviceClock`` logic on a fake time source, and the clock on the air
(Current Time Service of a cuff, vendor Date Time 0x2A08 of a meter) read and written through
bleak over a real bumble link. Every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakGATTProtocolError
from bleak.uuids import normalize_uuid_16
from bumble.device import Device

from device_simulators.bp_cuff import BloodPressureCuff
from device_simulators.current_time import ATT_DATA_FIELD_IGNORED, current_time_service
from device_simulators.device_clock import DeviceClock
from device_simulators.glucometer import Glucometer, MeterIdentity
from device_simulators.peripheral import PeripheralIdentity, SimulatedPeripheral
from device_simulators.radio import VirtualRadio
from gateway.bleak_bumble import BumbleCentral
from gateway.codec.date_time import AdjustReason, CurrentTime, DateTime, DayOfWeek
from tests.integration.ble.ble_support import CUFF_IDENTITY, TEST_TIMEOUT

CTS_UUID = normalize_uuid_16(0x1805)
CURRENT_TIME_UUID = normalize_uuid_16(0x2A2B)
DATE_TIME_UUID = normalize_uuid_16(0x2A08)
GLS_UUID = normalize_uuid_16(0x1808)
CONNECT_TIMEOUT = 5.0
ATT_WRITE_NOT_PERMITTED = 0x03
ATT_INVALID_ATTRIBUTE_VALUE_LENGTH = 0x0D
ATT_OUT_OF_RANGE = 0xFF
BERLIN = ZoneInfo("Europe/Berlin")
#: A Saturday in March, before the European DST change: Berlin is UTC+1.
REFERENCE = datetime(2026, 3, 14, 7, 30, 0, 500_000, tzinfo=UTC)

METER_IDENTITY = MeterIdentity("HW-GL 07", "Homewatch Devices", "HW-GLU-200", "SN-GL-7", "2.0.1")
CLOCK_IDENTITY = PeripheralIdentity("HW-CLK 01", "Homewatch Devices", "HW-CLK", "SN-CLK-1", "1.0")


class FakeSource:
    """A reference clock that only moves when told to."""

    def __init__(self, start: datetime = REFERENCE) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class ClockOnlyPeripheral(SimulatedPeripheral):
    """A device with nothing but a read-only Current Time Service (and Device Information)."""

    KIND = "clock"
    SERVICE_UUID16 = 0x1805
    APPEARANCE = 0x0000  # Unknown

    def __init__(self, device: Device, clock: DeviceClock) -> None:
        super().__init__(
            device,
            CLOCK_IDENTITY,
            [current_time_service(clock, writable=False)],
            advertising_interval_ms=100.0,
            indication_timeout=5.0,
            clock=clock,
        )


async def find(central: BumbleCentral, name: str) -> BLEDevice:
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: adv.local_name == name, timeout=5.0, backend=central.scanner_backend
    )
    assert device is not None, f"{name} was not found within 5 s"
    return device


def connect(device: BLEDevice, central: BumbleCentral) -> BleakClient:
    return BleakClient(device, timeout=CONNECT_TIMEOUT, backend=central.client_backend)


async def write_error(client: BleakClient, uuid: str, value: bytes) -> int:
    """The ATT error code a write with response gets (fails the test when it succeeds)."""
    with pytest.raises(BleakGATTProtocolError) as caught:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            await client.write_gatt_char(uuid, value, response=True)
    code = caught.value.args[0]
    assert isinstance(code, int)
    return code


StartCuff = Callable[[DeviceClock], Awaitable[BloodPressureCuff]]


@pytest.fixture
async def start_cuff(radio: VirtualRadio) -> AsyncIterator[StartCuff]:
    """Starts the test's cuff with the clock it is given (stopped at the end of the test)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(clock: DeviceClock) -> BloodPressureCuff:
            device = await radio.peripheral_device(CUFF_IDENTITY.name)
            cuff = BloodPressureCuff(device, CUFF_IDENTITY, clock=clock)
            return await stack.enter_async_context(cuff)

        yield start


# --- DeviceClock on a fake source (pure logic) ------------------------------------------------


def test_clock_shows_the_source_in_its_zone_plus_its_offset() -> None:
    source = FakeSource()
    clock = DeviceClock(tz=BERLIN, offset=timedelta(hours=2), source=source)
    assert clock.now() == datetime(2026, 3, 14, 10, 30, 0, 500_000)
    source.advance(seconds=90)
    assert clock.now() == datetime(2026, 3, 14, 10, 31, 30, 500_000)
    assert not clock.is_unset
    assert clock.writes == []


def test_default_clock_is_utc_on_the_real_time() -> None:
    clock = DeviceClock()
    before = datetime.now(UTC).replace(tzinfo=None)
    shown = clock.now()
    after = datetime.now(UTC).replace(tzinfo=None)
    assert shown.tzinfo is None
    assert before <= shown <= after


def test_unset_clock_starts_in_2000_runs_and_set_clears_it() -> None:
    source = FakeSource()
    clock = DeviceClock(tz=BERLIN, unset=True, source=source)
    assert clock.is_unset
    assert clock.now() == datetime(2000, 1, 1)
    source.advance(hours=1, seconds=5)
    assert clock.now() == datetime(2000, 1, 1, 1, 0, 5)

    clock.set(datetime(2026, 3, 14, 8, 30))
    assert not clock.is_unset
    assert clock.writes == [datetime(2026, 3, 14, 8, 30)]
    assert clock.now() == datetime(2026, 3, 14, 8, 30)
    source.advance(seconds=10)
    assert clock.now() == datetime(2026, 3, 14, 8, 30, 10)


def test_offset_shifts_an_unset_clock_too() -> None:
    clock = DeviceClock(unset=True, offset=timedelta(minutes=-5), source=FakeSource())
    assert clock.now() == datetime(1999, 12, 31, 23, 55)


@pytest.mark.parametrize(
    ("drift_ppm", "after_one_day"),
    [
        (50.0, timedelta(days=1, seconds=4, microseconds=320_000)),  # gains 4.32 s a day
        (-100.0, timedelta(days=1, seconds=-8, microseconds=-640_000)),  # loses 8.64 s a day
        (0.0, timedelta(days=1)),
    ],
)
def test_drift_ppm_makes_the_clock_run_fast_or_slow(
    drift_ppm: float, after_one_day: timedelta
) -> None:
    source = FakeSource()
    clock = DeviceClock(drift_ppm=drift_ppm, source=source)
    start = clock.now()
    source.advance(days=1)
    assert clock.now() - start == after_one_day
    # After a Current Time write it keeps drifting, from the written value.
    clock.set(datetime(2026, 4, 1, 12, 0))
    source.advance(days=1)
    assert clock.now() - datetime(2026, 4, 1, 12, 0) == after_one_day


def test_a_set_clock_does_not_follow_daylight_saving_time() -> None:
    # Set on Saturday 28 March 2026, 13:00 in Berlin (CET); DST starts on Sunday 29 March.
    source = FakeSource(datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    clock = DeviceClock(tz=BERLIN, source=source)
    assert clock.now() == datetime(2026, 3, 28, 13, 0)
    source.advance(days=1)
    assert clock.now() == datetime(2026, 3, 29, 13, 0)  # Berlin shows 14:00 (CEST) by now
    assert source().astimezone(BERLIN).hour == 14


def test_bad_clock_input_is_a_clear_error() -> None:
    clock = DeviceClock(source=FakeSource())
    with pytest.raises(ValueError, match="naive local time"):
        clock.set(datetime(2026, 3, 14, 8, 0, tzinfo=UTC))
    with pytest.raises(TypeError, match="datetime"):
        clock.set("2026-03-14T08:00")  # type: ignore[arg-type]
    assert clock.writes == []
    with pytest.raises(ValueError, match="drift_ppm"):
        DeviceClock(drift_ppm=float("nan"))
    with pytest.raises(ValueError, match="drift_ppm"):
        DeviceClock(drift_ppm=-1_000_000)
    with pytest.raises(TypeError, match="offset"):
        DeviceClock(offset=7200)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aware"):
        DeviceClock(source=lambda: datetime(2026, 3, 14))


# --- Current Time Service of a cuff, through bleak -------------------------------------------


async def test_read_current_time_of_a_cuff_two_hours_ahead(
    central: BumbleCentral, start_cuff: StartCuff
) -> None:
    clock = DeviceClock(tz=BERLIN, offset=timedelta(hours=2), source=FakeSource())
    cuff = await start_cuff(clock)
    assert cuff.clock is clock
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find(central, CUFF_IDENTITY.name), central) as client:
            cts = client.services.get_service(CTS_UUID)
            assert cts is not None, "a cuff with a clock serves the Current Time Service"
            characteristic = cts.get_characteristic(CURRENT_TIME_UUID)
            assert characteristic is not None
            assert sorted(characteristic.properties) == ["notify", "read", "write"]
            raw = await client.read_gatt_char(CURRENT_TIME_UUID)
    # 07:30:00.5 UTC is 08:30:00.5 in Berlin; the cuff is two hours ahead of that.
    assert bytes(raw).hex() == "ea07030e0a1e00068000"
    current = CurrentTime.from_bytes(bytes(raw))
    assert current.to_datetime() == datetime(2026, 3, 14, 10, 30, 0, 500_000)
    assert current.day_of_week is DayOfWeek.SATURDAY
    assert clock.writes == []


async def test_an_unset_clock_reads_year_2000_and_runs(
    central: BumbleCentral, start_cuff: StartCuff
) -> None:
    source = FakeSource()
    await start_cuff(DeviceClock(unset=True, source=source))
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find(central, CUFF_IDENTITY.name), central) as client:
            first = bytes(await client.read_gatt_char(CURRENT_TIME_UUID))
            source.advance(minutes=1, seconds=1)
            second = bytes(await client.read_gatt_char(CURRENT_TIME_UUID))
    assert first.hex() == "d0070101000000060000"  # 2000-01-01 00:00:00, a Saturday
    assert CurrentTime.from_bytes(second).to_datetime() == datetime(2000, 1, 1, 0, 1, 1)


async def test_write_current_time_then_read_it_back(
    central: BumbleCentral, start_cuff: StartCuff
) -> None:
    clock = DeviceClock(unset=True, source=FakeSource())
    await start_cuff(clock)
    assert clock.is_unset
    written = datetime(2026, 3, 14, 9, 15, 30, 500_000)
    value = CurrentTime.from_datetime(written, adjust_reason=AdjustReason.MANUAL_TIME_UPDATE)
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find(central, CUFF_IDENTITY.name), central) as client:
            await client.write_gatt_char(CURRENT_TIME_UUID, bytes(value), response=True)
            raw = bytes(await client.read_gatt_char(CURRENT_TIME_UUID))
    assert clock.writes == [written]
    assert not clock.is_unset
    assert CurrentTime.from_bytes(raw).to_datetime() == written  # the fake source stood still


async def test_a_malformed_current_time_write_is_refused_and_changes_nothing(
    central: BumbleCentral, start_cuff: StartCuff
) -> None:
    clock = DeviceClock(unset=True, source=FakeSource())
    await start_cuff(clock)
    valid = bytes(CurrentTime.from_datetime(datetime(2026, 3, 14, 9, 0)))
    month_13 = bytearray(valid)
    month_13[2] = 13
    date_unknown = bytes(CurrentTime(DateTime(0, 0, 0, 9, 0, 0)))
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find(central, CUFF_IDENTITY.name), central) as client:
            before = bytes(await client.read_gatt_char(CURRENT_TIME_UUID))
            refusals = {
                "empty": await write_error(client, CURRENT_TIME_UUID, b""),
                "9 bytes": await write_error(client, CURRENT_TIME_UUID, valid[:9]),
                "11 bytes": await write_error(client, CURRENT_TIME_UUID, valid + b"\x00"),
                "month 13": await write_error(client, CURRENT_TIME_UUID, bytes(month_13)),
                "date unknown": await write_error(client, CURRENT_TIME_UUID, date_unknown),
            }
            after = bytes(await client.read_gatt_char(CURRENT_TIME_UUID))
            assert clock.writes == [] and clock.is_unset
            # The link and the characteristic still work after the refusals.
            await client.write_gatt_char(CURRENT_TIME_UUID, valid, response=True)
    assert refusals == {
        "empty": ATT_INVALID_ATTRIBUTE_VALUE_LENGTH,
        "9 bytes": ATT_INVALID_ATTRIBUTE_VALUE_LENGTH,
        "11 bytes": ATT_INVALID_ATTRIBUTE_VALUE_LENGTH,
        "month 13": ATT_DATA_FIELD_IGNORED,
        "date unknown": ATT_DATA_FIELD_IGNORED,
    }
    assert before == after
    assert CurrentTime.from_bytes(before).to_datetime() == datetime(2000, 1, 1)
    assert clock.writes == [datetime(2026, 3, 14, 9, 0)]


async def test_a_read_only_current_time_refuses_writes(
    radio: VirtualRadio, central: BumbleCentral
) -> None:
    clock = DeviceClock(source=FakeSource())
    async with ClockOnlyPeripheral(await radio.peripheral_device(CLOCK_IDENTITY.name), clock):
        async with asyncio.timeout(TEST_TIMEOUT):
            async with connect(await find(central, CLOCK_IDENTITY.name), central) as client:
                characteristic = client.services.get_characteristic(CURRENT_TIME_UUID)
                assert characteristic is not None
                assert sorted(characteristic.properties) == ["notify", "read"]
                valid = bytes(CurrentTime.from_datetime(datetime(2026, 3, 14, 9, 0)))
                code = await write_error(client, CURRENT_TIME_UUID, valid)
                raw = bytes(await client.read_gatt_char(CURRENT_TIME_UUID))
    assert code == ATT_WRITE_NOT_PERMITTED
    assert clock.writes == []
    assert CurrentTime.from_bytes(raw).to_datetime() == datetime(2026, 3, 14, 7, 30, 0, 500_000)


async def test_a_cuff_without_a_clock_has_no_current_time_service(
    central: BumbleCentral, cuff: BloodPressureCuff
) -> None:
    assert cuff.clock is None
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find(central, CUFF_IDENTITY.name), central) as client:
            assert client.services.get_service(CTS_UUID) is None


# --- meter clocks: CTS by default, vendor Date Time 0x2A08 inside the Glucose service --------


async def test_meter_clock_as_current_time_service(
    radio: VirtualRadio, central: BumbleCentral
) -> None:
    clock = DeviceClock(offset=timedelta(minutes=-7), source=FakeSource())
    meter = Glucometer(
        await radio.peripheral_device(METER_IDENTITY.name), METER_IDENTITY, clock=clock
    )
    assert meter.clock is clock
    async with meter, asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find(central, METER_IDENTITY.name), central) as client:
            gls = client.services.get_service(GLS_UUID)
            assert gls is not None and gls.get_characteristic(DATE_TIME_UUID) is None
            raw = bytes(await client.read_gatt_char(CURRENT_TIME_UUID))
    assert CurrentTime.from_bytes(raw).to_datetime() == datetime(2026, 3, 14, 7, 23, 0, 500_000)


async def test_meter_vendor_date_time_clock_reads_and_writes(
    radio: VirtualRadio, central: BumbleCentral
) -> None:
    clock = DeviceClock(offset=timedelta(minutes=-7), source=FakeSource())
    meter = Glucometer(
        await radio.peripheral_device(METER_IDENTITY.name),
        METER_IDENTITY,
        clock=clock,
        clock_characteristic="2A08",
    )
    written = DateTime(2026, 3, 14, 7, 30, 0)
    async with meter, asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find(central, METER_IDENTITY.name), central) as client:
            assert client.services.get_service(CTS_UUID) is None
            gls = client.services.get_service(GLS_UUID)
            assert gls is not None
            characteristic = gls.get_characteristic(DATE_TIME_UUID)
            assert characteristic is not None
            assert sorted(characteristic.properties) == ["read", "write"]
            before = bytes(await client.read_gatt_char(DATE_TIME_UUID))
            refusals = [
                await write_error(client, DATE_TIME_UUID, bytes(written)[:6]),
                await write_error(client, DATE_TIME_UUID, bytes(DateTime(2026, 0, 14, 7, 30))),
                await write_error(client, DATE_TIME_UUID, bytes(DateTime(2026, 2, 30, 7, 30))),
            ]
            assert clock.writes == []
            await client.write_gatt_char(DATE_TIME_UUID, bytes(written), response=True)
            after = bytes(await client.read_gatt_char(DATE_TIME_UUID))
    assert DateTime.from_bytes(before) == DateTime(2026, 3, 14, 7, 23, 0)
    assert refusals == [ATT_INVALID_ATTRIBUTE_VALUE_LENGTH, ATT_OUT_OF_RANGE, ATT_OUT_OF_RANGE]
    assert clock.writes == [datetime(2026, 3, 14, 7, 30, 0)]
    assert DateTime.from_bytes(after) == written
