"""Weight, oximetry and temperature measurements → wire readings: unit conversions (imperial
scales, Fahrenheit), special values as null, status names, body site, times and reading ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.codec.pulse_oximeter import (
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
)
from gateway.codec.thermometer import TemperatureMeasurement, TemperatureType, TemperatureUnit
from gateway.codec.weight_scale import WeightMeasurement
from gateway.device_time import ClockCheck
from gateway.vitals_readings import (
    oximetry_reading,
    plx_status_names,
    temperature_reading,
    vitals_record_key,
    weight_reading,
)
from homewatch.wire import (
    READING,
    ClockStatus,
    DeviceIdentity,
    ReadingsMessage,
    TimeSource,
    Unit,
)

DEVICE = DeviceIdentity(
    address="C0:5A:00:00:00:07", manufacturer="Acme", model="V-1", serial_number="S7"
)
RECEIVED = datetime(2026, 1, 2, 9, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


def weight(hex_payload: str, clock: ClockCheck | None = None, received: datetime = RECEIVED):
    raw = bytes.fromhex(hex_payload)
    return weight_reading(WeightMeasurement.from_bytes(raw), raw, DEVICE, received, UTC_ZONE, clock)


def oximetry(hex_payload: str, clock: ClockCheck | None = None):
    raw = bytes.fromhex(hex_payload)
    m = PlxSpotCheckMeasurement.from_bytes(raw)
    return oximetry_reading(m, raw, DEVICE, RECEIVED, UTC_ZONE, clock)


def temperature(hex_payload: str, site: TemperatureType | None = None):
    raw = bytes.fromhex(hex_payload)
    m = TemperatureMeasurement.from_bytes(raw)
    return temperature_reading(m, raw, DEVICE, RECEIVED, UTC_ZONE, site=site)


# --- weight ------------------------------------------------------------------------------------


def test_si_weight_is_kilograms_as_sent():
    r = weight("00b036")  # vectors.json 2A9D-01: 14000 x 0.005 kg
    assert r.kind == "weight"
    assert (r.values.weight.value, r.values.weight.unit) == (70.0, Unit.KILOGRAM)
    assert r.values.reported_unit == "SI"
    assert r.values.bmi is None and r.values.height is None and r.values.user_id is None
    assert r.raw == "00b036"


def test_imperial_weight_is_converted_to_kilograms():
    r = weight("01483c")  # 2A9D-02: 154.32 lb
    assert r.values.reported_unit == "imperial"
    assert r.values.weight.unit is Unit.KILOGRAM
    assert r.values.weight.value == pytest.approx(154.32 * 0.45359237, abs=1e-9)


def test_imperial_height_is_converted_to_metres_and_bmi_is_kept():
    r = weight("09483ce500b202")  # 2A9D-04: 154.32 lb, BMI 22.9, 69.0 in
    assert r.values.height is not None and r.values.height.unit is Unit.METRE
    assert r.values.height.value == pytest.approx(69.0 * 0.0254, abs=1e-9)
    assert r.values.bmi is not None and r.values.bmi.unit is Unit.KG_PER_M2
    assert r.values.bmi.value == pytest.approx(22.9)


def test_all_weight_fields_with_a_time_stamp():
    r = weight("0ec832e9070c1f173b3a02d400db06")  # 2A9D-03
    assert r.values.weight.value == 65.0
    assert r.values.user_id == 2
    assert r.values.bmi is not None and r.values.bmi.value == pytest.approx(21.2)
    assert r.values.height is not None and r.values.height.value == pytest.approx(1.755)
    assert r.device_time == datetime(2025, 12, 31, 23, 59, 58)
    assert r.measured_at == datetime(2025, 12, 31, 23, 59, 58, tzinfo=UTC)
    assert r.time_source is TimeSource.DEVICE


@pytest.mark.parametrize("hex_payload", ["00ffff", "06ffffea07010100000001"])  # 2A9D-05, -06
def test_measurement_unsuccessful_is_a_null_weight_not_327_kg(hex_payload):
    r = weight(hex_payload)
    assert r.values.weight.value is None
    assert r.values.weight.unit is Unit.KILOGRAM


def test_a_drifted_clock_corrects_the_weight_time():
    clock = ClockCheck(ClockStatus.CORRECTED, timedelta(hours=-2))  # the scale is 2 h behind
    r = weight(
        "0ec832e9070c1f173b3a02d400db06", clock, received=datetime(2026, 1, 1, 3, tzinfo=UTC)
    )
    assert r.time_source is TimeSource.DEVICE_CORRECTED
    assert r.measured_at == datetime(2026, 1, 1, 1, 59, 58, tzinfo=UTC)
    assert r.device_clock.status is ClockStatus.CORRECTED
    assert r.device_clock.offset_seconds == -7200


# --- oximetry ----------------------------------------------------------------------------------


def test_minimal_spot_check():
    r = oximetry("0062004800")  # 2A5E-01
    assert r.kind == "oximetry"
    assert (r.values.spo2.value, r.values.spo2.unit) == (98, Unit.PERCENT)
    assert (r.values.pulse_rate.value, r.values.pulse_rate.unit) == (72, Unit.BEATS_PER_MINUTE)
    assert r.values.pulse_amplitude_index is None and r.values.status == []
    assert r.device_time is None and r.time_source is TimeSource.RECEIVED


def test_all_fields_and_a_device_clock_that_is_not_set():
    # 2A5E-02: every field, and flag bit 4 "Device Clock is Not Set"
    r = oximetry("1f61004b00e807030f081e00800020000019f0", ClockCheck.unknown())
    assert (r.values.spo2.value, r.values.pulse_rate.value) == (97, 75)
    assert r.values.pulse_amplitude_index is not None
    assert r.values.pulse_amplitude_index.value == pytest.approx(2.5)
    assert r.values.status == ["validated_data", "low_perfusion_detected"]
    # The oximeter says its time stamp means nothing: believed, whatever the gateway read.
    assert r.device_time == datetime(2024, 3, 15, 8, 30)
    assert r.device_clock.status is ClockStatus.UNSET
    assert r.time_source is TimeSource.RECEIVED and r.measured_at == RECEIVED


def test_nan_spo2_and_pulse_are_null_with_their_status():
    r = oximetry("02ff07ff070020")  # 2A5E-03: NaN, NaN, "measurement unavailable"
    assert r.values.spo2.value is None and r.values.pulse_rate.value is None
    assert r.values.status == ["measurement_unavailable"]


def test_status_names_cover_both_fields_in_bit_order_and_skip_reserved_bits():
    m = PlxSpotCheckMeasurement.from_values(
        95,
        80,
        measurement_status=PlxMeasurementStatus(
            PlxMeasurementStatus.INVALID_MEASUREMENT_DETECTED
            | PlxMeasurementStatus.MEASUREMENT_ONGOING
            | 0x0001  # RFU
        ),
        device_and_sensor_status=PlxDeviceAndSensorStatus(
            PlxDeviceAndSensorStatus.SENSOR_DISCONNECTED
            | PlxDeviceAndSensorStatus.EXTENDED_DISPLAY_UPDATE_ONGOING
            | 0x010000  # RFU
        ),
    )
    assert plx_status_names(m) == [
        "measurement_ongoing",
        "invalid_measurement_detected",
        "extended_display_update_ongoing",
        "sensor_disconnected",
    ]


# --- temperature -------------------------------------------------------------------------------


def test_fahrenheit_is_converted_to_celsius():
    r = temperature("01da0300ff")  # 2A1C-03: 98.6 °F
    assert r.kind == "body_temperature"
    assert (r.values.temperature.value, r.values.temperature.unit) == (37.0, Unit.CELSIUS)
    assert r.values.reported_unit == "[degF]"


@pytest.mark.parametrize(
    ("fahrenheit", "celsius"), [(32, 0.0), (104, 40.0), (95.9, 35.5), (-40, -40.0)]
)
def test_fahrenheit_conversion_points(fahrenheit, celsius):
    raw = bytes(TemperatureMeasurement.from_values(fahrenheit, unit=TemperatureUnit.FAHRENHEIT))
    r = temperature(raw.hex())
    assert r.values.temperature.value == pytest.approx(celsius, abs=1e-9)


def test_celsius_with_time_stamp_and_type_in_the_measurement():
    r = temperature("06b00e00fedc070c050b321b04")  # SPEC 6.3 (nRF): 37.60 °C, finger
    assert r.values.temperature.value == pytest.approx(37.6)
    assert r.values.reported_unit == "Cel"
    assert r.values.site == "finger"
    assert r.device_time == datetime(2012, 12, 5, 11, 50, 27)


def test_nan_temperature_is_null():
    r = temperature("00ffff7f00")  # 2A1C-05
    assert r.values.temperature.value is None


def test_site_comes_from_the_temperature_type_characteristic_unless_the_measurement_has_one():
    assert temperature("00c9ffffff").values.site is None
    assert temperature("00c9ffffff", site=TemperatureType.EAR).values.site == "ear"
    assert temperature("04c9ffffff07", site=TemperatureType.EAR).values.site == "rectum"
    assert temperature("04c9ffffff0c").values.site == "reserved_12"  # RFU code, kept


# --- ids and the wire --------------------------------------------------------------------------


def test_record_keys_are_stable_and_distinct():
    stamped = datetime(2026, 1, 1, 8, 0)
    assert vitals_record_key("weight", stamped, b"\x01", RECEIVED) == vitals_record_key(
        "weight", stamped, b"\x01", RECEIVED + timedelta(hours=1)
    )
    assert vitals_record_key("weight", stamped, b"\x01", RECEIVED) != vitals_record_key(
        "oximetry", stamped, b"\x01", RECEIVED
    )
    assert vitals_record_key("weight", None, b"\x01", RECEIVED) != vitals_record_key(
        "weight", None, b"\x01", RECEIVED + timedelta(seconds=1)
    )


def test_the_same_record_delivered_twice_gets_the_same_id():
    payload = "0ec832e9070c1f173b3a02d400db06"
    first = weight(payload)
    again = weight(payload, received=RECEIVED + timedelta(minutes=5))
    other = weight("0ec932e9070c1f173b3a02d400db06")
    assert first.reading_id == again.reading_id
    assert first.reading_id != other.reading_id


def test_readings_survive_the_wire_contract():
    readings = [
        weight("09483ce500b202"),
        weight("00ffff"),
        oximetry("1f61004b00e807030f081e00800020000019f0"),
        oximetry("02ff07ff070020"),
        temperature("01da0300ff"),
        temperature("00ffff7f00", site=TemperatureType.ARMPIT),
    ]
    message = ReadingsMessage(gateway_id="gw-1", sent_at=RECEIVED, readings=readings)
    assert ReadingsMessage.from_bytes(message.to_bytes()).readings == readings
    for reading in readings:
        assert READING.validate_json(reading.model_dump_json()) == reading
