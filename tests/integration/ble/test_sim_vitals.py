"""The weight scale, pulse oximeter and thermometer simulators through bleak over a real bumble
link: GATT layout and advertising, Feature / Temperature Type values, stored measurements
delivered oldest first on subscription and kept until confirmed, a bounded memory, Battery and
the device clock. Every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakGATTProtocolError
from bleak.uuids import normalize_uuid_16
from bumble.device import Device

from device_simulators.device_clock import DeviceClock
from device_simulators.peripheral import PeripheralIdentity
from device_simulators.pulse_oximeter import (
    OXIMETER_FEATURES,
    OXIMETER_MODEL,
    PlxFeatures,
    PlxSupportedFeature,
    PulseOximeter,
)
from device_simulators.radio import VirtualRadio
from device_simulators.stored_indications import IndicatedMeasurementDevice, StoredIndications
from device_simulators.thermometer import THERMOMETER_MODEL, Thermometer
from device_simulators.weight_scale import (
    SCALE_FEATURE,
    SCALE_MODEL,
    HeightResolution,
    WeightScale,
    WeightScaleFeature,
)
from gateway.bleak_bumble import BumbleCentral
from gateway.codec.date_time import CurrentTime
from gateway.codec.pulse_oximeter import PlxMeasurementStatus, PlxSpotCheckMeasurement
from gateway.codec.thermometer import TemperatureMeasurement, TemperatureType
from gateway.codec.weight_scale import WeightMeasurement
from tests.integration.ble.ble_support import BATTERY_LEVEL_UUID, TEST_TIMEOUT

CONNECT_TIMEOUT = 5.0
ATT_READ_NOT_PERMITTED = 0x02
CURRENT_TIME_UUID = normalize_uuid_16(0x2A2B)
TEMPERATURE_TYPE_UUID = normalize_uuid_16(0x2A1D)
DIS = {"manufacturer": 0x2A29, "model": 0x2A24, "serial_number": 0x2A25, "firmware": 0x2A26}
T0 = datetime(2026, 2, 3, 7, 30)


@dataclass(frozen=True)
class Kind:
    """One simulated device type, as these tests use it."""

    id: str
    make: Callable[..., IndicatedMeasurementDevice]
    model: str
    service: int
    measurement: int
    extra: int  # the service's other characteristic (Feature / Temperature Type)
    sample: Callable[[int], Any]  # the i-th measurement (a codec dataclass)
    decode: Callable[[bytes], Any]
    options: tuple[tuple[str, Any], ...] = ()

    def identity(self, serial: str = "1") -> PeripheralIdentity:
        return PeripheralIdentity(
            f"{self.id} {serial}", "Homewatch Simulated", self.model, f"SN-{serial}", "3.1"
        )


KINDS = [
    Kind(
        "scale",
        WeightScale,
        SCALE_MODEL,
        0x181D,
        0x2A9D,
        0x2A9E,
        lambda i: WeightMeasurement.from_values(
            80 - i * 0.35, time_stamp=T0 + timedelta(days=i), user_id=1, bmi=24.7, height=1.8
        ),
        WeightMeasurement.from_bytes,
    ),
    Kind(
        "oximeter",
        PulseOximeter,
        OXIMETER_MODEL,
        0x1822,
        0x2A5E,
        0x2A60,
        lambda i: PlxSpotCheckMeasurement.from_values(
            96 - i,
            64 + i,
            time_stamp=T0 + timedelta(hours=i),
            measurement_status=PlxMeasurementStatus.VALIDATED_DATA,
            pulse_amplitude_index=3.2,
        ),
        PlxSpotCheckMeasurement.from_bytes,
    ),
    Kind(
        "thermometer",
        Thermometer,
        THERMOMETER_MODEL,
        0x1809,
        0x2A1C,
        0x2A1D,
        lambda i: TemperatureMeasurement.from_values(
            36.6 + i / 10, time_stamp=T0 + timedelta(minutes=i)
        ),
        TemperatureMeasurement.from_bytes,
        (("site", TemperatureType.EAR),),
    ),
]
BY_ID = {kind.id: kind for kind in KINDS}

Start = Callable[..., Awaitable[IndicatedMeasurementDevice]]


class Inbox:
    """Indicated payloads in arrival order; waits for a count with a timeout."""

    def __init__(self) -> None:
        self.values: list[bytes] = []
        self._changed = asyncio.Event()

    def __call__(self, _characteristic: object, data: bytearray) -> None:
        self.values.append(bytes(data))
        self._changed.set()

    async def wait_for(self, count: int, within: float = 5.0) -> list[bytes]:
        async with asyncio.timeout(within):
            while len(self.values) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.values


@pytest.fixture
async def start(radio: VirtualRadio) -> AsyncIterator[Start]:
    """Starts simulators of a kind (stopped at the end of the test)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(kind: Kind, serial: str = "1", **options: Any):
            identity = kind.identity(serial)
            device: Device = await radio.peripheral_device(identity.name)
            simulator = kind.make(device, identity, **(dict(kind.options) | options))
            return await stack.enter_async_context(simulator)

        yield start


async def find(central: BumbleCentral, kind: Kind, name: str) -> BLEDevice:
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: adv.local_name == name,
        timeout=5.0,
        service_uuids=[normalize_uuid_16(kind.service)],
        backend=central.scanner_backend,
    )
    assert device is not None, f"{name} was not found within 5 s"
    return device


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.01)


def connect(device: BLEDevice, central: BumbleCentral) -> BleakClient:
    return BleakClient(device, timeout=CONNECT_TIMEOUT, backend=central.client_backend)


@pytest.fixture(params=[kind.id for kind in KINDS])
def kind(request: pytest.FixtureRequest) -> Kind:
    return BY_ID[request.param]


async def test_gatt_layout_device_information_and_battery(
    central: BumbleCentral, start: Start, kind: Kind
) -> None:
    simulator = await start(kind, battery_level=64)
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find(central, kind, simulator.identity.name), central) as client:
            service = client.services.get_service(normalize_uuid_16(kind.service))
            assert service is not None
            measurement = service.get_characteristic(normalize_uuid_16(kind.measurement))
            assert measurement is not None and measurement.properties == ["indicate"]
            extra = service.get_characteristic(normalize_uuid_16(kind.extra))
            assert extra is not None and extra.properties == ["read"]
            with pytest.raises(BleakGATTProtocolError) as refused:
                await client.read_gatt_char(measurement)
            strings = {
                name: (await client.read_gatt_char(normalize_uuid_16(uuid))).decode()
                for name, uuid in DIS.items()
            }
            battery = await client.read_gatt_char(BATTERY_LEVEL_UUID)
            # No clock given: no Current Time Service.
            assert client.services.get_characteristic(CURRENT_TIME_UUID) is None
    assert refused.value.args[0] == ATT_READ_NOT_PERMITTED
    identity = simulator.identity
    assert strings == {
        "manufacturer": identity.manufacturer,
        "model": kind.model,
        "serial_number": identity.serial_number,
        "firmware": identity.firmware_revision,
    }
    assert bytes(battery) == b"\x40" and simulator.battery_level == 64


async def test_feature_and_temperature_type_values(central: BumbleCentral, start: Start) -> None:
    scale = await start(BY_ID["scale"])
    oximeter = await start(BY_ID["oximeter"])
    ear = await start(BY_ID["thermometer"], serial="ear")
    plain = await start(BY_ID["thermometer"], serial="plain", site=None)
    read: dict[str, bytes] = {}
    async with asyncio.timeout(TEST_TIMEOUT):
        for name, sim, uuid in (
            ("scale", scale, 0x2A9E),
            ("oximeter", oximeter, 0x2A60),
            ("ear", ear, 0x2A1D),
        ):
            kind = BY_ID[sim.KIND]
            async with connect(await find(central, kind, sim.identity.name), central) as client:
                read[name] = bytes(await client.read_gatt_char(normalize_uuid_16(uuid)))
        kind = BY_ID["thermometer"]
        async with connect(await find(central, kind, plain.identity.name), central) as client:
            plain_has_type = client.services.get_characteristic(TEMPERATURE_TYPE_UUID) is not None
    # Time stamp, multiple users, BMI; 0.05 kg (4 << 3) and 0.001 m (3 << 7) resolution.
    assert read["scale"] == (0b1_1010_0111).to_bytes(4, "little") == bytes(SCALE_FEATURE)
    # Supported 0x4B (status fields 0x01|0x02, time stamp 0x08, PAI 0x40), then the status
    # bits it can report: 16-bit measurement status, 24-bit device and sensor status.
    assert read["oximeter"] == bytes.fromhex("4b00c0c0302800")
    assert read["ear"] == bytes([TemperatureType.EAR])
    assert not plain_has_type


async def test_stored_measurements_come_oldest_first_on_subscription_then_live_ones(
    central: BumbleCentral, start: Start, kind: Kind
) -> None:
    simulator = await start(kind)
    samples = [kind.sample(i) for i in range(4)]
    for sample in samples[:3]:
        assert await simulator.measure(sample) is False  # nobody listens: kept
    assert simulator.stored_count == 3
    inbox = Inbox()
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find(central, kind, simulator.identity.name), central) as client:
            await client.start_notify(normalize_uuid_16(kind.measurement), inbox)
            await inbox.wait_for(3)
            # Each one confirmed, so each one forgotten (the confirmation follows the value).
            await wait_until(lambda: simulator.stored_count == 0)
            assert await simulator.measure(samples[3]) is True
            received = await inbox.wait_for(4)
    assert received == [bytes(sample) for sample in samples]
    assert [kind.decode(payload) for payload in received] == samples


async def test_a_measurement_is_kept_until_a_subscribed_central_confirms_it(
    central: BumbleCentral, start: Start
) -> None:
    kind = BY_ID["scale"]
    scale = await start(kind)
    first, second, third = (bytes(kind.sample(i)) for i in range(3))
    uuid = normalize_uuid_16(kind.measurement)
    inbox = Inbox()
    async with asyncio.timeout(TEST_TIMEOUT):
        device = await find(central, kind, scale.identity.name)
        async with connect(device, central) as client:
            # Connected but not subscribed: nothing is sent, nothing forgotten.
            assert await scale.measure_raw(first) is False
            assert scale.stored_count == 1
            await client.start_notify(uuid, inbox)
            assert await inbox.wait_for(1) == [first]
            await client.stop_notify(uuid)
            assert await scale.measure_raw(second) is False
        # The link is gone: a measurement now waits for the next central.
        assert await scale.measure_raw(third) is False
        assert scale.stored_count == 2
        async with connect(await find(central, kind, scale.identity.name), central) as client:
            await client.start_notify(uuid, inbox)
            received = await inbox.wait_for(3)
            await wait_until(lambda: scale.stored_count == 0)
    assert received == [first, second, third]


async def test_a_full_memory_overwrites_the_oldest_measurement(
    central: BumbleCentral, start: Start
) -> None:
    kind = BY_ID["thermometer"]
    thermometer = await start(kind, capacity=2)
    samples = [bytes(kind.sample(i)) for i in range(3)]
    for sample in samples:
        await thermometer.measure_raw(sample)
    assert (thermometer.stored_count, thermometer.overwritten_count) == (2, 1)
    inbox = Inbox()
    async with asyncio.timeout(TEST_TIMEOUT):
        device = await find(central, kind, thermometer.identity.name)
        async with connect(device, central) as client:
            await client.start_notify(normalize_uuid_16(kind.measurement), inbox)
            received = await inbox.wait_for(2)
            await asyncio.sleep(0.2)  # nothing else comes
    assert received == samples[1:]


async def test_clock_is_current_time_and_battery_changes_are_notified(
    central: BumbleCentral, start: Start, kind: Kind
) -> None:
    clock = DeviceClock(offset=timedelta(hours=-5))
    simulator = await start(kind, clock=clock, battery_level=90)
    levels = Inbox()
    async with asyncio.timeout(TEST_TIMEOUT):
        async with connect(await find(central, kind, simulator.identity.name), central) as client:
            shown = CurrentTime.from_bytes(
                bytes(await client.read_gatt_char(CURRENT_TIME_UUID))
            ).to_datetime()
            expected = clock.now()
            now = datetime(2026, 5, 6, 7, 8, 9)
            await client.write_gatt_char(
                CURRENT_TIME_UUID, bytes(CurrentTime.from_datetime(now)), response=True
            )
            await client.start_notify(BATTERY_LEVEL_UUID, levels)
            await simulator.set_battery_level(15)
            assert await levels.wait_for(1) == [b"\x0f"]
    assert shown is not None and abs(shown - expected) < timedelta(seconds=5)
    assert clock.writes == [now]
    assert simulator.battery_level == 15


# --- pure parts --------------------------------------------------------------------------------


async def test_a_record_overwritten_while_on_the_air_does_not_cost_the_next_one() -> None:
    release = asyncio.Event()
    delivered: list[bytes] = []

    async def deliver(payload: bytes) -> bool:
        await release.wait()
        delivered.append(payload)
        return True

    memory = StoredIndications(deliver, capacity=2)
    async with asyncio.timeout(TEST_TIMEOUT):
        first = asyncio.create_task(memory.store(b"a"))
        await asyncio.sleep(0)  # "a" is on the air
        later = [asyncio.create_task(memory.store(p)) for p in (b"b", b"c")]
        await asyncio.sleep(0)
        assert memory.overwritten == 1  # "a" no longer in memory
        release.set()
        results = await asyncio.gather(first, *later)
    assert delivered == [b"a", b"b", b"c"]
    assert results == [True, True, True] and len(memory) == 0


async def test_unconfirmed_records_stay_in_order() -> None:
    confirm = [False, True, True]

    async def deliver(_payload: bytes) -> bool:
        return confirm.pop(0) if confirm else False

    memory = StoredIndications(deliver)
    assert await memory.store(b"x") is False
    assert len(memory) == 1
    assert await memory.store(b"y") is True  # the retry delivers "x" first, then "y"
    assert len(memory) == 0


@pytest.mark.parametrize(
    "build",
    [
        lambda: StoredIndications(lambda _p: asyncio.sleep(0, True), capacity=0),
        lambda: PlxFeatures(supported=PlxSupportedFeature.MEASUREMENT_STATUS),
        lambda: bytes(WeightScaleFeature(weight_resolution=8)),
    ],
    ids=["capacity", "plx-status-bits", "weight-resolution"],
)
def test_impossible_configurations_are_refused(build) -> None:
    with pytest.raises(ValueError):
        build()


async def test_bad_values_are_refused(radio: VirtualRadio) -> None:
    kind = BY_ID["oximeter"]
    identity = kind.identity("bad")
    with pytest.raises(ValueError, match="battery level"):
        PulseOximeter(await radio.peripheral_device(identity.name), identity, battery_level=101)
    oximeter = PulseOximeter(
        await radio.peripheral_device("no battery"), identity, battery_level=None
    )
    async with oximeter:
        with pytest.raises(ValueError, match="no Battery service"):
            await oximeter.set_battery_level(50)
        with pytest.raises(ValueError, match="empty"):
            await oximeter.measure_raw(b"")
    assert oximeter.features == OXIMETER_FEATURES
    feature = WeightScaleFeature(time_stamp=False, height_resolution=HeightResolution.M_0_005)
    assert bytes(feature) == (2 << 7).to_bytes(4, "little")
