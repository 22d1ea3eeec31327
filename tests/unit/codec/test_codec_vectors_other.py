"""Weight 0x2A9D, PLX Spot-Check 0x2A5E and Temperature 0x2A1C: shared vectors field by field,
hand-written edge cases, round trips and fuzzing."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.codec import DateTime, DecodeError, EncodeError, Float32, SFloat, to_jsonable
from gateway.codec.pulse_oximeter import (
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    PlxSpotCheckFlags,
    PlxSpotCheckMeasurement,
)
from gateway.codec.thermometer import (
    TemperatureFlags,
    TemperatureMeasurement,
    TemperatureType,
    TemperatureUnit,
)
from gateway.codec.weight_scale import WeightFlags, WeightMeasurement, WeightUnit
from tests.unit.codec.shared_vectors import load_vectors, split

DECODERS: dict[str, Callable[[bytes], object]] = {
    "2A9D": WeightMeasurement.from_bytes,
    "2A5E": PlxSpotCheckMeasurement.from_bytes,
    "2A1C": TemperatureMeasurement.from_bytes,
}
#: How many vectors of each characteristic shared/ble/vectors.json holds today (pinned, so a
#: filter or a renamed field cannot silently empty the table).
EXPECTED_COUNTS = {"2A9D": 7, "2A5E": 4, "2A1C": 3}


VECTORS, LOAD_ERROR = load_vectors(DECODERS)
GOOD, BAD = split(VECTORS)


def decode(characteristic: str, payload: bytes) -> Any:
    return DECODERS[characteristic](payload)


def test_vectors_are_loaded_and_all_exercised() -> None:
    assert LOAD_ERROR is None, LOAD_ERROR
    assert dict(Counter(v["characteristic"] for v in VECTORS)) == EXPECTED_COUNTS
    assert len(GOOD) + len(BAD) == sum(EXPECTED_COUNTS.values()) == 14
    assert len(BAD) == 2


# -- field-by-field checkers: each returns the expected keys it checked ------------------------
def check_medfloat(obj: SFloat | Float32, exp: dict[str, Any]) -> None:
    assert f"0x{obj.raw:0{obj.SIZE * 2}X}" == exp["raw"]
    assert (obj.mantissa, obj.exponent) == (exp["mantissa"], exp["exponent"])
    if "special" in exp:
        assert obj.special is not None and obj.special.value == exp["special"]
        assert exp["value"] is None
    else:
        assert obj.special is None
        assert repr(obj.value) == repr(float(exp["value"]))
    assert "ambiguous_reserved_mantissa" not in exp


def check_date_time(obj: DateTime | None, exp: dict[str, Any]) -> None:
    fields = ("year", "month", "day", "hours", "minutes", "seconds")
    assert obj is not None
    assert {f: getattr(obj, f) for f in fields} == {f: exp[f] for f in fields}
    assert list(obj.unknown_fields) == exp.get("unknown_fields", [])


def check_weight(obj: WeightMeasurement, exp: dict[str, Any]) -> set[str]:
    assert f"0x{int(obj.flags):02X}" == exp["flags"]
    assert obj.unit.label == exp["units"]
    assert obj.reserved_flags == 0
    assert obj.weight_raw == exp["weight_raw"]
    assert obj.weight == exp["weight"]
    assert obj.successful == ("weight_text" not in exp)
    assert obj.unit.weight_unit == exp["weight_unit"]
    assert (obj.time_stamp is None) == ("time_stamp" not in exp)
    if obj.time_stamp is not None:
        check_date_time(obj.time_stamp, exp["time_stamp"])
    assert obj.user_id == exp.get("user_id")
    assert obj.bmi == exp.get("bmi")
    assert obj.height == exp.get("height")
    assert (obj.height_raw is not None) == ("height_unit" in exp)
    if obj.height_raw is not None:
        assert obj.unit.height_unit == exp["height_unit"]
    assert obj.trailing_bytes == b""
    return {
        "flags",
        "units",
        "weight_raw",
        "weight",
        "weight_text",
        "weight_unit",
        "time_stamp",
        "user_id",
        "bmi",
        "height",
        "height_unit",
    }


def check_status(
    flags: PlxMeasurementStatus | PlxDeviceAndSensorStatus, exp: dict[str, Any], digits: int
) -> None:
    assert f"0x{int(flags):0{digits}X}" == exp["raw"]
    assert [str(f.name).lower() for f in type(flags) if f and f in flags] == exp["set"]


def check_plx(obj: PlxSpotCheckMeasurement, exp: dict[str, Any]) -> set[str]:
    assert f"0x{int(obj.flags):02X}" == exp["flags"]
    assert obj.reserved_flags == 0
    check_medfloat(obj.spo2, exp["spo2_pct"])
    check_medfloat(obj.pulse_rate, exp["pulse_rate_bpm"])
    assert (obj.time_stamp is None) == ("time_stamp" not in exp)
    if obj.time_stamp is not None:
        check_date_time(obj.time_stamp, exp["time_stamp"])
    assert (obj.measurement_status is None) == ("measurement_status" not in exp)
    if obj.measurement_status is not None:
        check_status(obj.measurement_status, exp["measurement_status"], 4)
    assert (obj.device_and_sensor_status is None) == ("device_and_sensor_status" not in exp)
    if obj.device_and_sensor_status is not None:
        check_status(obj.device_and_sensor_status, exp["device_and_sensor_status"], 6)
    assert (obj.pulse_amplitude_index is None) == ("pulse_amplitude_index_pct" not in exp)
    if obj.pulse_amplitude_index is not None:
        check_medfloat(obj.pulse_amplitude_index, exp["pulse_amplitude_index_pct"])
    assert obj.device_clock_not_set == exp["device_clock_not_set"]
    assert obj.trailing_bytes == b""
    return {
        "flags",
        "spo2_pct",
        "pulse_rate_bpm",
        "time_stamp",
        "measurement_status",
        "device_and_sensor_status",
        "pulse_amplitude_index_pct",
        "device_clock_not_set",
    }


def check_temperature(obj: TemperatureMeasurement, exp: dict[str, Any]) -> set[str]:
    assert f"0x{int(obj.flags):02X}" == exp["flags"]
    assert obj.reserved_flags == 0
    check_medfloat(obj.temperature, exp["temperature"])
    assert obj.unit.label == exp["unit"]
    assert (obj.time_stamp is None) == ("time_stamp" not in exp)
    if obj.time_stamp is not None:
        check_date_time(obj.time_stamp, exp["time_stamp"])
    assert obj.temperature_type is None and "temperature_type" not in exp
    assert obj.trailing_bytes == b""
    return {"flags", "temperature", "unit", "time_stamp"}


CHECKERS: dict[str, Callable[[Any, dict[str, Any]], set[str]]] = {
    "2A9D": check_weight,
    "2A5E": check_plx,
    "2A1C": check_temperature,
}
TYPES = {"2A9D": WeightMeasurement, "2A5E": PlxSpotCheckMeasurement, "2A1C": TemperatureMeasurement}


@pytest.mark.parametrize("vector", GOOD)
def test_decode_matches_expected(vector: dict[str, Any]) -> None:
    characteristic = vector["characteristic"]
    obj = decode(characteristic, bytes.fromhex(vector["hex"]))
    assert isinstance(obj, TYPES[characteristic])
    checked = CHECKERS[characteristic](obj, vector["expected"])
    assert set(vector["expected"]) <= checked, "expected keys this test does not check"


# -- Weight Measurement ----------------------------------------------------------------------
def test_weight_normalised_to_kg_and_m() -> None:
    imperial = WeightMeasurement.from_bytes(bytes.fromhex("09483ce500b202"))  # vector 2A9D-04
    assert imperial.weight_kg() == pytest.approx(154.32 * 0.45359237)
    assert imperial.height_m() == pytest.approx(69.0 * 0.0254)
    document = to_jsonable(imperial)
    assert document["weight_kg"] == imperial.weight_kg()
    assert document["height_m"] == imperial.height_m()
    si = WeightMeasurement.from_bytes(bytes.fromhex("0ec832e9070c1f173b3a02d400db06"))  # 2A9D-03
    assert (si.weight_kg(), si.height_m()) == (65.0, 1.755)
    assert "weight_kg" not in to_jsonable(si)
    unsuccessful = WeightMeasurement.from_bytes(bytes.fromhex("01ffff"))
    assert unsuccessful.weight is None and unsuccessful.weight_kg() is None
    assert unsuccessful.height_m() is None


def test_weight_from_values_rounds_to_the_resolution() -> None:
    value = WeightMeasurement.from_values(70.0, user_id=2, bmi=21.2, height=1.755)
    assert bytes(value) == bytes.fromhex("0cb03602d400db06")
    assert WeightMeasurement.from_values(70.0026).weight_raw == 14001  # 0.005 kg steps
    assert WeightMeasurement.from_values(154.32, unit=WeightUnit.IMPERIAL).weight_raw == 15432
    assert WeightMeasurement.from_values(None).weight_raw == 0xFFFF
    stamped = WeightMeasurement.from_values(1, time_stamp=datetime(2026, 1, 1))
    assert stamped.time_stamp == DateTime(2026, 1, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weight": 327.675}, "weight"),  # raw 0xFFFF is "unsuccessful", not a weight
        ({"weight": -1}, "weight"),
        ({"weight": math.nan}, "not a finite number"),
        ({"weight": 70, "bmi": 21.2}, "bmi and height go together"),
        ({"weight": 70, "user_id": 256}, "user_id"),
    ],
)
def test_weight_from_values_refuses_what_cannot_go_on_the_wire(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(EncodeError, match=message):
        WeightMeasurement.from_values(**kwargs)


def test_weight_rfu_flags_unknown_user_and_trailing_bytes_are_kept() -> None:
    payload = bytes.fromhex("f4b036ffabcd")  # RFU bits 4..7, user 255, two trailing bytes
    value = WeightMeasurement.from_bytes(payload)
    assert value.reserved_flags == 0xF0 and value.user_id == 0xFF
    assert value.flags == WeightFlags(0xF4)
    assert value.trailing_bytes == b"\xab\xcd"
    document = to_jsonable(value)
    assert document["reserved_flag_bits_set"] == "0xF0"
    assert document["user_id_text"] == "unknown user"
    assert document["trailing_bytes"] == "abcd"
    assert bytes(value) == payload


@pytest.mark.parametrize(
    ("hex_payload", "reason"),
    [
        ("", "need 1 byte(s) for Flags at offset 0, payload has 0"),
        ("00b0", "need 2 byte(s) for Weight at offset 1, payload has 2"),
        ("04b036", "need 1 byte(s) for User ID at offset 3, payload has 3"),
        ("08b036d400", "need 2 byte(s) for Height at offset 5, payload has 5"),
    ],
)
def test_weight_truncations_name_the_field(hex_payload: str, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        WeightMeasurement.from_bytes(bytes.fromhex(hex_payload))
    assert info.value.reason == f"truncated: {reason}"
    assert info.value.characteristic == "2A9D"


# -- PLX Spot-Check --------------------------------------------------------------------------
def test_plx_specials_normalise_to_none() -> None:
    value = PlxSpotCheckMeasurement.from_bytes(bytes.fromhex("02ff07ff070020"))  # vector 2A5E-03
    assert value.spo2_percent() is None and value.pulse_rate_bpm() is None
    assert math.isnan(value.spo2.value)
    assert value.measurement_status == PlxMeasurementStatus.MEASUREMENT_UNAVAILABLE
    full = PlxSpotCheckMeasurement.from_bytes(
        bytes.fromhex("1f61004b00e807030f081e00800020000019f0")  # vector 2A5E-02
    )
    assert (full.spo2_percent(), full.pulse_rate_bpm()) == (97.0, 75.0)
    assert full.pulse_amplitude_index_percent() == 2.5
    assert full.flags == PlxSpotCheckFlags(0x1F)


def test_plx_rfu_status_bits_are_kept_and_reported() -> None:
    # flags 0xE6 = RFU 5..7 + status + device status; status RFU bit 0; device status RFU bit 16
    payload = bytes.fromhex("e662004800" + "0100" + "010001")
    value = PlxSpotCheckMeasurement.from_bytes(payload)
    assert value.reserved_flags == 0xE0
    assert int(value.measurement_status or 0) == 0x0001
    assert int(value.device_and_sensor_status or 0) == 0x010001
    document = to_jsonable(value)
    assert document["measurement_status"] == {
        "raw": "0x0001",
        "set": [],
        "reserved_bits_set": "0x0001",
    }
    assert document["device_and_sensor_status"] == {
        "raw": "0x010001",
        "set": ["extended_display_update_ongoing"],
        "reserved_bits_set": "0x010000",
    }
    assert document["reserved_flag_bits_set"] == "0xE0"
    assert bytes(value) == payload


def test_plx_from_values_and_encode_errors() -> None:
    value = PlxSpotCheckMeasurement.from_values(
        98, 72, time_stamp=datetime(2024, 3, 15, 8, 30), pulse_amplitude_index=math.nan
    )
    assert bytes(value) == bytes.fromhex("0962004800e807030f081e00ff07")
    with pytest.raises(EncodeError, match="device_and_sensor_status"):
        PlxSpotCheckMeasurement(
            SFloat(98, 0), SFloat(72, 0), device_and_sensor_status=PlxDeviceAndSensorStatus(1 << 24)
        )
    with pytest.raises(EncodeError, match="reserved_flags"):
        PlxSpotCheckMeasurement(SFloat(98, 0), SFloat(72, 0), reserved_flags=0x10)


# -- Temperature Measurement -----------------------------------------------------------------
def test_temperature_nordic_example_with_time_stamp_and_type() -> None:
    payload = bytes.fromhex("06b00e00fedc070c050b321b04")  # NRF-A test, SPEC 6.3
    value = TemperatureMeasurement.from_bytes(payload)
    assert value.celsius() == 37.6 and value.unit is TemperatureUnit.CELSIUS
    assert value.time_stamp == DateTime(2012, 12, 5, 11, 50, 27)
    assert value.temperature_type is TemperatureType.FINGER
    document = to_jsonable(value)
    assert (document["temperature_type"], document["temperature_type_text"]) == (4, "Finger")
    assert bytes(value) == payload


def test_temperature_fahrenheit_and_specials_normalise() -> None:
    fahrenheit = TemperatureMeasurement.from_bytes(bytes.fromhex("01da0300ff"))  # vector 2A1C-03
    assert fahrenheit.celsius() == 37.0
    assert to_jsonable(fahrenheit)["celsius"] == 37.0
    nan = TemperatureMeasurement.from_bytes(bytes.fromhex("00ffff7f00"))  # vector 2A1C-05
    assert nan.celsius() is None and math.isnan(nan.temperature.value)
    assert TemperatureMeasurement.from_values(-5.5).celsius() == -5.5


def test_temperature_rfu_type_and_flags_are_kept() -> None:
    payload = bytes.fromhex("fcb00e00fe00")  # RFU flag bits 3..7 + type present; type 0 (RFU)
    value = TemperatureMeasurement.from_bytes(payload)
    assert value.reserved_flags == 0xF8
    assert value.flags == TemperatureFlags(0xFC)
    assert value.temperature_type == 0 and value.temperature_type.text == "RFU_0"
    assert TemperatureType(200).name == "RFU_200"
    assert bytes(value) == payload


@pytest.mark.parametrize(
    ("hex_payload", "reason"),
    [
        ("00b00e00", "need 4 byte(s) for Temperature at offset 1, payload has 4"),
        ("04b00e00fe", "need 1 byte(s) for Temperature Type at offset 5, payload has 5"),
        ("02b00e00fedc07", "need 7 byte(s) for Time Stamp at offset 5, payload has 7"),
    ],
)
def test_temperature_truncations_name_the_field(hex_payload: str, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        TemperatureMeasurement.from_bytes(bytes.fromhex(hex_payload))
    assert info.value.reason == f"truncated: {reason}"
    assert info.value.characteristic == "2A1C"


# -- property-based round trips and fuzzing --------------------------------------------------
u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
sfloats = st.builds(SFloat, st.integers(-2048, 2047), st.integers(-8, 7))
float32s = st.builds(Float32, st.integers(-(2**23), 2**23 - 1), st.integers(-128, 127))
date_times = st.builds(DateTime, u16, u8, u8, u8, u8, u8)
trailing = st.binary(max_size=3)


@st.composite
def weights(draw: st.DrawFn) -> WeightMeasurement:
    bmi_and_height = draw(st.none() | st.tuples(u16, u16))
    return WeightMeasurement(
        draw(st.sampled_from(WeightUnit)),
        draw(u16),
        draw(st.none() | date_times),
        draw(st.none() | u8),
        None if bmi_and_height is None else bmi_and_height[0],
        None if bmi_and_height is None else bmi_and_height[1],
        draw(st.integers(0, 15).map(lambda b: b << 4)),
        draw(trailing),
    )


plx_measurements = st.builds(
    PlxSpotCheckMeasurement,
    spo2=sfloats,
    pulse_rate=sfloats,
    time_stamp=st.none() | date_times,
    measurement_status=st.none() | u16.map(PlxMeasurementStatus),
    device_and_sensor_status=st.none() | st.integers(0, 0xFFFFFF).map(PlxDeviceAndSensorStatus),
    pulse_amplitude_index=st.none() | sfloats,
    device_clock_not_set=st.booleans(),
    reserved_flags=st.sampled_from([0, 0x20, 0x40, 0x80, 0xE0]),
    trailing_bytes=trailing,
)
temperatures = st.builds(
    TemperatureMeasurement,
    unit=st.sampled_from(TemperatureUnit),
    temperature=float32s,
    time_stamp=st.none() | date_times,
    temperature_type=st.none() | u8.map(TemperatureType),
    reserved_flags=st.integers(0, 31).map(lambda b: b << 3),
    trailing_bytes=trailing,
)


def _round_trips(obj: Any) -> None:
    payload = bytes(obj)
    again = type(obj).from_bytes(payload)
    assert again == obj
    assert bytes(again) == payload
    json.dumps(to_jsonable(again), allow_nan=False)


@given(weights())
def test_weight_round_trip(value: WeightMeasurement) -> None:
    _round_trips(value)


@given(plx_measurements)
def test_plx_spot_check_round_trip(value: PlxSpotCheckMeasurement) -> None:
    _round_trips(value)


@given(temperatures)
def test_temperature_round_trip(value: TemperatureMeasurement) -> None:
    _round_trips(value)


@given(st.integers(0, 0xFFFE), st.sampled_from(WeightUnit))
def test_weight_from_values_round_trips_every_raw_weight(raw: int, unit: WeightUnit) -> None:
    weight = WeightMeasurement(unit, raw).weight
    assert weight is not None
    assert WeightMeasurement.from_values(weight, unit=unit).weight_raw == raw
