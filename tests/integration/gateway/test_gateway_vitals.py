"""The gateway reading weight scales, pulse oximeters and thermometers (one generic session for
measurements by indication): stored records on connect ended by a quiet period, then live ones,
each as the right reading kind with values in the wire's units; a drifted clock corrected and
then set; an unset clock; a malformed payload rejected while the next one gets through. Real
parts: bumble simulators, bleak through the bumble backend, the SQLite outbox, Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from device_simulators.device_clock import DeviceClock
from device_simulators.peripheral import PeripheralIdentity
from device_simulators.pulse_oximeter import OXIMETER_MODEL, PulseOximeter
from device_simulators.radio import VirtualRadio
from device_simulators.stored_indications import IndicatedMeasurementDevice
from device_simulators.thermometer import THERMOMETER_MODEL, Thermometer
from device_simulators.vendor_quirks import SIMULATED_MANUFACTURER
from device_simulators.weight_scale import SCALE_MODEL, WeightScale
from gateway.codec.pulse_oximeter import (
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
)
from gateway.codec.thermometer import TemperatureMeasurement, TemperatureType, TemperatureUnit
from gateway.codec.weight_scale import WeightMeasurement, WeightUnit
from gateway.outbox import Outbox
from homewatch.wire import (
    ClockStatus,
    ReadingsMessage,
    TimeSource,
    Unit,
    readings_topic,
    serial_device_key,
)
from tests.fixtures.mqtt import MqttTap
from tests.integration.gateway.ble_gateway_support import eventually, running_gateway

LB = 0.45359237


@dataclass(frozen=True)
class Model:
    """A simulated device model, what it measures, and what the gateway must make of it."""

    id: str
    make: Callable[..., IndicatedMeasurementDevice]
    model: str
    kind: str  # the wire reading kind
    stored: Callable[[int, datetime], Any]  # i-th stored measurement, stamped ``at``
    live: Callable[[datetime], Any]
    check_stored: Callable[[Any, int], None]
    check_live: Callable[[Any], None]
    malformed: bytes  # what a faulty device sends: DecodeError
    options: dict[str, Any] = field(default_factory=dict)

    def identity(self, serial: str) -> PeripheralIdentity:
        return PeripheralIdentity(
            f"{self.id} {serial}", SIMULATED_MANUFACTURER, self.model, serial, "1.0"
        )


def check_stored_weight(reading, i: int) -> None:
    v = reading.values
    assert v.weight.unit is Unit.KILOGRAM and v.weight.value == pytest.approx(82.4 - i * 0.2)
    assert v.bmi.unit is Unit.KG_PER_M2 and v.bmi.value == pytest.approx(25.4)
    assert v.height.unit is Unit.METRE and v.height.value == pytest.approx(1.8)
    assert (v.reported_unit, v.user_id) == ("SI", 2)


def check_live_weight(reading) -> None:
    v = reading.values
    assert v.reported_unit == "imperial"  # sent in pounds, stored in kilograms
    assert v.weight.unit is Unit.KILOGRAM and v.weight.value == pytest.approx(181.6 * LB)
    assert v.bmi is None and v.height is None


def check_stored_oximetry(reading, i: int) -> None:
    v = reading.values
    assert (v.spo2.value, v.spo2.unit) == (97 - i, Unit.PERCENT)
    assert (v.pulse_rate.value, v.pulse_rate.unit) == (68 + i, Unit.BEATS_PER_MINUTE)
    assert v.pulse_amplitude_index is None
    assert v.status == ["validated_data"]


def check_live_oximetry(reading) -> None:
    v = reading.values
    assert (v.spo2.value, v.pulse_rate.value) == (91, 104)
    assert v.pulse_amplitude_index is not None
    assert v.pulse_amplitude_index.unit is Unit.PERCENT
    assert v.pulse_amplitude_index.value == pytest.approx(0.4)
    assert v.status == ["low_perfusion_detected"]


def check_stored_temperature(reading, i: int) -> None:
    v = reading.values
    assert v.temperature.unit is Unit.CELSIUS
    assert v.temperature.value == pytest.approx(37.2 + i / 10)
    assert (v.reported_unit, v.site) == ("Cel", "ear")  # site from Temperature Type 0x2A1D


def check_live_temperature(reading) -> None:
    v = reading.values
    assert v.temperature.unit is Unit.CELSIUS and v.temperature.value == pytest.approx(38.0)
    assert (v.reported_unit, v.site) == ("[degF]", "ear")


MODELS = [
    Model(
        "scale",
        WeightScale,
        SCALE_MODEL,
        "weight",
        lambda i, at: WeightMeasurement.from_values(
            82.4 - i * 0.2, time_stamp=at, user_id=2, bmi=25.4, height=1.8
        ),
        lambda at: WeightMeasurement.from_values(181.6, unit=WeightUnit.IMPERIAL, time_stamp=at),
        check_stored_weight,
        check_live_weight,
        bytes.fromhex("02b036ea07"),  # vectors.json 2A9D-07: time stamp cut short
    ),
    Model(
        "oximeter",
        PulseOximeter,
        OXIMETER_MODEL,
        "oximetry",
        lambda i, at: PlxSpotCheckMeasurement.from_values(
            97 - i, 68 + i, time_stamp=at, measurement_status=PlxMeasurementStatus.VALIDATED_DATA
        ),
        lambda at: PlxSpotCheckMeasurement.from_values(
            91,
            104,
            time_stamp=at,
            device_and_sensor_status=PlxDeviceAndSensorStatus.LOW_PERFUSION_DETECTED,
            pulse_amplitude_index=0.4,
        ),
        check_stored_oximetry,
        check_live_oximetry,
        bytes.fromhex("04620048002000"),  # 2A5E-04: 24-bit status in two octets
    ),
    Model(
        "thermometer",
        Thermometer,
        THERMOMETER_MODEL,
        "body_temperature",
        lambda i, at: TemperatureMeasurement.from_values(37.2 + i / 10, time_stamp=at),
        lambda at: TemperatureMeasurement.from_values(
            100.4, unit=TemperatureUnit.FAHRENHEIT, time_stamp=at
        ),
        check_stored_temperature,
        check_live_temperature,
        bytes.fromhex("02b00e00fedc07"),  # time stamp cut short
        {"site": TemperatureType.EAR},
    ),
]


@pytest.fixture(params=MODELS, ids=[m.id for m in MODELS])
def model(request: pytest.FixtureRequest) -> Model:
    return request.param


@pytest.fixture
async def start(radio: VirtualRadio):
    """Start simulators on the radio; they stop when the test ends."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(model: Model, serial: str, **options) -> IndicatedMeasurementDevice:
            identity = model.identity(serial)
            device = await radio.peripheral_device(identity.name)
            simulator = model.make(device, identity, **(model.options | options))
            return await stack.enter_async_context(simulator)

        yield start


async def test_stored_and_live_measurements_with_a_drifted_clock(
    model: Model, start, central, mqtt_broker, topic_root, tmp_path
):
    clock = DeviceClock(offset=-timedelta(hours=2, minutes=13))  # behind the real time
    simulator = await start(model, f"{model.id.upper()}-CLK", clock=clock)
    # Two measurements while no gateway listens: kept, stamped by the device's clock.
    stamps = [clock.now().replace(microsecond=0) - timedelta(minutes=m) for m in (30, 15)]
    for i, at in enumerate(stamps):
        await simulator.measure(model.stored(i, at))
    assert simulator.stored_count == 2
    tap = MqttTap(mqtt_broker, readings_topic("gw-ble", topic_root))
    try:
        await eventually(tap.subscribed.is_set)
        async with running_gateway(central, mqtt_broker, topic_root, tmp_path / "o.db") as gw:
            await eventually(lambda: len(gw.readings) == 2)
            await eventually(lambda: clock.writes)  # set once the backlog went quiet
            live_at = clock.now().replace(microsecond=0)
            assert await simulator.measure(model.live(live_at))
            await eventually(lambda: len(gw.readings) == 3)
            published = await eventually(lambda: _published_ids(tap) >= _ids(gw.readings))
    finally:
        tap.close()
    assert published
    assert [r.kind for r in gw.readings] == [model.kind] * 3
    key = serial_device_key(SIMULATED_MANUFACTURER, model.model, f"{model.id.upper()}-CLK")
    assert {r.device.device_key for r in gw.readings} == {key}
    stored, live = gw.readings[:2], gw.readings[2]
    offset = -(2 * 3600 + 13 * 60)
    for i, (reading, at) in enumerate(zip(stored, stamps, strict=True)):
        model.check_stored(reading, i)
        assert reading.device_time == at
        assert reading.device_clock.status is ClockStatus.CORRECTED
        assert reading.device_clock.offset_seconds == pytest.approx(offset, abs=5)
        assert reading.time_source is TimeSource.DEVICE_CORRECTED
        true_time = at.replace(tzinfo=UTC) - timedelta(seconds=offset)
        assert abs(reading.measured_at - true_time) < timedelta(seconds=5)
        assert reading.raw == bytes(model.stored(i, at)).hex()
    # After the clock was set the device stamps the right time, and nothing is corrected.
    model.check_live(live)
    assert live.device_time == live_at
    assert live.device_clock.status is ClockStatus.SYNCHRONISED
    assert live.time_source is TimeSource.DEVICE
    assert abs(live.measured_at - datetime.now(UTC)) < timedelta(seconds=30)
    assert simulator.stored_count == 0


async def test_a_malformed_payload_is_rejected_and_the_next_one_gets_through(
    model: Model, start, central, mqtt_broker, topic_root, tmp_path
):
    simulator = await start(model, f"{model.id.upper()}-BAD")
    at = datetime.now(UTC).replace(microsecond=0, tzinfo=None) - timedelta(minutes=5)
    await simulator.measure_raw(model.malformed)
    await simulator.measure(model.stored(0, at))
    outbox_path = tmp_path / "o.db"
    async with running_gateway(central, mqtt_broker, topic_root, outbox_path) as gw:
        [reading] = await eventually(lambda: gw.readings)
        await eventually(lambda: gw.gateway.counters.decode_errors == 1)
        # And the device stays served: a live measurement after the bad one.
        await asyncio.sleep(1.0)  # past the backlog's quiet period
        await simulator.measure(model.stored(1, at + timedelta(minutes=1)))
        await eventually(lambda: len(gw.readings) == 2)
    model.check_stored(reading, 0)
    model.check_stored(gw.readings[1], 1)
    assert reading.device_time == at and reading.device_clock.status is ClockStatus.UNKNOWN
    assert gw.gateway.counters.decode_errors == 1
    async with Outbox(outbox_path) as outbox:
        assert await outbox.rejected_count() == 1


async def test_an_unset_clock_marks_the_reading_and_is_set(
    start, central, mqtt_broker, topic_root, tmp_path
):
    model = MODELS[0]
    clock = DeviceClock(unset=True)  # after a battery change: 2000-01-01
    scale = await start(model, "SCALE-UNSET", clock=clock)
    await scale.measure(model.stored(0, clock.now().replace(microsecond=0)))
    async with running_gateway(central, mqtt_broker, topic_root, tmp_path / "o.db") as gw:
        [reading] = await eventually(lambda: gw.readings)
        await eventually(lambda: clock.writes)
    assert reading.device_clock.status is ClockStatus.UNSET
    assert reading.time_source is TimeSource.RECEIVED
    assert reading.measured_at == reading.received_at
    assert reading.device_time is not None and reading.device_time.year == 2000
    assert not clock.is_unset


def _ids(readings) -> set:
    return {r.reading_id for r in readings}


def _published_ids(tap: MqttTap) -> set:
    return {
        r.reading_id
        for payload in tap.messages
        for r in ReadingsMessage.from_bytes(payload).readings
    }
