"""Cuff variants seen in the field, through bleak over a real bumble link: Intermediate Cuff
Pressure while inflating, and a cuff that notifies its measurements instead of indicating them.
Every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakGATTProtocolError
from bleak.uuids import normalize_uuid_16

from device_simulators.bp_cuff import INFLATION_STEP, BloodPressureCuff
from device_simulators.radio import VirtualRadio
from gateway.bleak_bumble import BumbleCentral
from gateway.codec.blood_pressure import BloodPressureMeasurement, IntermediateCuffPressure
from gateway.codec.bp_layout import PressureUnit
from gateway.codec.ieee11073 import SFloat
from tests.integration.ble.ble_support import BPM_UUID, BPS_UUID, CUFF_IDENTITY, TEST_TIMEOUT

ICP_UUID = normalize_uuid_16(0x2A36)
CONNECT_TIMEOUT = 5.0
ATT_WRITE_NOT_PERMITTED = 0x03
INFLATION_MMHG = [20, 60, 110, 160]
MEASUREMENT = bytes(BloodPressureMeasurement.from_values(128, 84, 99, pulse_rate=71))

StartCuff = Callable[..., Awaitable[BloodPressureCuff]]


def inflation(pressures: list[int]) -> list[bytes]:
    return [
        bytes(IntermediateCuffPressure(PressureUnit.MMHG, SFloat.coerce(mmhg)))
        for mmhg in pressures
    ]


class Arrivals:
    """Every notification/indication from any characteristic, in arrival order, with its UUID
    and the loop time it arrived."""

    def __init__(self) -> None:
        self.values: list[tuple[str, bytes, float]] = []
        self._changed = asyncio.Event()

    def __call__(self, characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        self.values.append((characteristic.uuid, bytes(data), asyncio.get_running_loop().time()))
        self._changed.set()

    async def wait_for(self, count: int, within: float = 5.0) -> list[tuple[str, bytes]]:
        async with asyncio.timeout(within):
            while len(self.values) < count:
                self._changed.clear()
                await self._changed.wait()
        return [(uuid, data) for uuid, data, _ in self.values]


@pytest.fixture
async def start_cuff(radio: VirtualRadio) -> AsyncIterator[StartCuff]:
    """Starts the test's cuff with the options it is given (stopped at the end of the test)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**options: Any) -> BloodPressureCuff:
            device = await radio.peripheral_device(CUFF_IDENTITY.name)
            cuff = BloodPressureCuff(device, CUFF_IDENTITY, **options)
            return await stack.enter_async_context(cuff)

        yield start


async def find_cuff(central: BumbleCentral) -> BLEDevice:
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: adv.local_name == CUFF_IDENTITY.name,
        timeout=5.0,
        service_uuids=[BPS_UUID],
        backend=central.scanner_backend,
    )
    assert device is not None, "the cuff was not found within 5 s"
    return device


def connect(device: BLEDevice, central: BumbleCentral) -> BleakClient:
    return BleakClient(device, timeout=CONNECT_TIMEOUT, backend=central.client_backend)


def properties(client: BleakClient, uuid: str) -> list[str]:
    characteristic = client.services.get_characteristic(uuid)
    assert characteristic is not None, f"{uuid} is not served"
    return sorted(characteristic.properties)


# --- Intermediate Cuff Pressure ------------------------------------------------------------


async def test_cuff_pressure_is_notified_in_order_before_the_measurement(
    central: BumbleCentral, start_cuff: StartCuff
) -> None:
    cuff = await start_cuff(intermediate_cuff_pressure=True)
    arrivals = Arrivals()
    steps = inflation(INFLATION_MMHG)
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find_cuff(central), central) as client:
            assert properties(client, ICP_UUID) == ["notify"]
            assert properties(client, BPM_UUID) == ["indicate"]
            await client.start_notify(ICP_UUID, arrivals)
            await client.start_notify(BPM_UUID, arrivals)
            assert await cuff.measure(MEASUREMENT, inflation=steps) is True
            received = await arrivals.wait_for(len(steps) + 1)
    assert received == [*((ICP_UUID, step) for step in steps), (BPM_UUID, MEASUREMENT)]
    pressures = [IntermediateCuffPressure.from_bytes(data) for _, data in received[:-1]]
    assert [p.current_cuff_pressure_mmhg() for p in pressures] == INFLATION_MMHG
    assert BloodPressureMeasurement.from_bytes(received[-1][1]).in_mmhg().systolic == 128
    # The cuff inflates: its notifications are spread out, not sent in one burst.
    times = [at for _, _, at in arrivals.values]
    assert times[len(steps) - 1] - times[0] >= (len(steps) - 1) * INFLATION_STEP * 0.9
    assert cuff.stored_count == 0


async def test_cuff_pressure_is_skipped_when_nobody_listens_to_it(
    central: BumbleCentral, start_cuff: StartCuff
) -> None:
    cuff = await start_cuff(intermediate_cuff_pressure=True)
    arrivals = Arrivals()
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find_cuff(central), central) as client:
            await client.start_notify(BPM_UUID, arrivals)
            assert await cuff.measure(MEASUREMENT, inflation=inflation(INFLATION_MMHG)) is True
            assert await arrivals.wait_for(1) == [(BPM_UUID, MEASUREMENT)]
            # Nothing else is on its way: a later measurement is the next thing to arrive.
            assert await cuff.measure(MEASUREMENT, inflation=inflation([30])) is True
            assert await arrivals.wait_for(2) == [(BPM_UUID, MEASUREMENT)] * 2
        # Measured with nobody connected: the pressure is gone, the measurement is stored.
        assert await cuff.measure(MEASUREMENT, inflation=inflation([40])) is False
    assert cuff.stored_count == 1


async def test_inflation_needs_the_intermediate_cuff_pressure_characteristic(
    central: BumbleCentral, start_cuff: StartCuff
) -> None:
    cuff = await start_cuff()
    with pytest.raises(ValueError, match="Intermediate Cuff Pressure"):
        await cuff.measure(MEASUREMENT, inflation=inflation([20]))
    assert cuff.stored_count == 0
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find_cuff(central), central) as client:
            assert client.services.get_characteristic(ICP_UUID) is None


async def test_an_empty_cuff_pressure_is_refused(start_cuff: StartCuff) -> None:
    cuff = await start_cuff(intermediate_cuff_pressure=True)
    with pytest.raises(ValueError, match="cannot be empty"):
        await cuff.measure(MEASUREMENT, inflation=[inflation([20])[0], b""])
    assert cuff.stored_count == 0


# --- a cuff that notifies its measurements ---------------------------------------------------


async def test_notify_only_cuff_delivers_by_notification(
    central: BumbleCentral, start_cuff: StartCuff
) -> None:
    cuff = await start_cuff(measurement_property="notify")
    arrivals = Arrivals()
    second = bytes(BloodPressureMeasurement.from_values(141, 92, 108))
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find_cuff(central), central) as client:
            assert properties(client, BPM_UUID) == ["notify"]
            await client.start_notify(BPM_UUID, arrivals)
            assert await cuff.measure(MEASUREMENT) is True
            assert await cuff.measure(second) is True
            assert await arrivals.wait_for(2) == [(BPM_UUID, MEASUREMENT), (BPM_UUID, second)]
    assert cuff.stored_count == 0


async def test_notify_only_cuff_keeps_measurements_until_a_central_subscribes(
    central: BumbleCentral, start_cuff: StartCuff
) -> None:
    cuff = await start_cuff(measurement_property="notify")
    arrivals = Arrivals()
    stored = [bytes(BloodPressureMeasurement.from_values(120 + i, 80, 93)) for i in range(3)]
    async with asyncio.timeout(TEST_TIMEOUT):
        for payload in stored:
            assert await cuff.measure(payload) is False
        assert cuff.stored_count == 3
        async with connect(await find_cuff(central), central) as client:
            await client.start_notify(BPM_UUID, arrivals)
            assert await arrivals.wait_for(3) == [(BPM_UUID, p) for p in stored]
    assert cuff.stored_count == 0


async def test_unknown_measurement_property_is_refused(radio: VirtualRadio) -> None:
    device = await radio.peripheral_device(CUFF_IDENTITY.name)
    with pytest.raises(ValueError, match="measurement_property"):
        BloodPressureCuff(device, CUFF_IDENTITY, measurement_property="write")  # type: ignore[arg-type]


async def test_writes_to_the_measurement_characteristics_are_refused(
    central: BumbleCentral, start_cuff: StartCuff
) -> None:
    cuff = await start_cuff(intermediate_cuff_pressure=True)
    codes = []
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find_cuff(central), central) as client:
            for uuid in (BPM_UUID, ICP_UUID):
                with pytest.raises(BleakGATTProtocolError) as caught:
                    await client.write_gatt_char(uuid, MEASUREMENT, response=True)
                codes.append(caught.value.args[0])
            # The cuff still works on the same link.
            arrivals = Arrivals()
            await client.start_notify(BPM_UUID, arrivals)
            assert await cuff.measure(MEASUREMENT) is True
            assert await arrivals.wait_for(1) == [(BPM_UUID, MEASUREMENT)]
    assert codes == [ATT_WRITE_NOT_PERMITTED, ATT_WRITE_NOT_PERMITTED]
