"""The codec's public surface: registry, errors, encoders, unit conversion, UUIDs."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal

import pytest

from gateway.codec import (
    BloodPressureMeasurement,
    CodecError,
    CurrentTime,
    DateTime,
    DayOfWeek,
    DecodeError,
    EncodeError,
    Float32,
    IntermediateCuffPressure,
    MeasurementStatus,
    PressureUnit,
    PulseRateRange,
    SFloat,
    SpecialValue,
    characteristic_key,
    decode,
    encode_float,
    encode_sfloat,
    parse_uuid16,
    to_jsonable,
    uuid128,
    uuids,
)

BPM_KPA = bytes.fromhex("15bdf00b009ff03c001200")  # vector 2A35-02
BPM_FULL = bytes.fromhex("1e780050005d00e807030f081e004800020000")  # vector 2A35-12


@pytest.mark.parametrize(
    "name",
    [
        "2A35",
        "2a35",
        "0x2A35",
        " 0x2a35 ",
        "00002a35-0000-1000-8000-00805f9b34fb",
        "00002A35-0000-1000-8000-00805F9B34FB",
    ],
)
def test_registry_accepts_every_spelling(name: str) -> None:
    assert characteristic_key(name) == "2A35"
    assert isinstance(decode(name, BPM_FULL), BloodPressureMeasurement)


def test_registry_number_formats() -> None:
    assert decode("sfloat", b"\xbd\xf0") == SFloat(189, -1)
    assert decode("FLOAT", bytes.fromhex("720100ff")) == Float32(370, -1)


@pytest.mark.parametrize("name", ["2A00", "180A", "nonsense", "", "0x12345"])
def test_unknown_characteristic_is_a_decode_error(name: str) -> None:
    with pytest.raises(DecodeError, match="unsupported characteristic") as info:
        decode(name, b"\x00")
    assert info.value.characteristic == name


def test_decode_error_carries_structured_fields() -> None:
    with pytest.raises(DecodeError) as info:
        decode("2A35", b"")
    error = info.value
    assert isinstance(error, CodecError)
    assert (error.characteristic, error.payload, error.payload_hex) == ("2A35", b"", "")
    assert error.reason == "truncated: need 1 byte(s) for Flags at offset 0, payload has 0"
    assert str(error) == f"2A35: {error.reason} (payload <empty>)"


def test_trailing_bytes_are_kept_and_reported() -> None:
    obj = decode("2A35", BPM_KPA + b"\xaa\xbb")
    assert isinstance(obj, BloodPressureMeasurement)
    assert obj.trailing_bytes == b"\xaa\xbb"
    assert to_jsonable(obj)["trailing_bytes"] == "aabb"
    assert bytes(obj) == BPM_KPA + b"\xaa\xbb"


def test_values_are_free_of_float_artefacts() -> None:
    assert repr(SFloat.from_bytes(b"\xbd\xf0").value) == "18.9"
    assert repr(Float32.from_bytes(bytes.fromhex("87d612fe")).value) == "12345.67"
    assert SFloat(189, -1).decimal == Decimal("18.9")


@pytest.mark.parametrize(
    ("raw", "special", "check"),
    [
        ("ff07", SpecialValue.NAN, math.isnan),
        ("0008", SpecialValue.NRES, math.isnan),
        ("0108", SpecialValue.RESERVED, math.isnan),
        ("fe07", SpecialValue.POSITIVE_INFINITY, lambda v: v == math.inf),
        ("0208", SpecialValue.NEGATIVE_INFINITY, lambda v: v == -math.inf),
    ],
)
def test_sfloat_specials(raw: str, special: SpecialValue, check) -> None:
    number = SFloat.from_bytes(bytes.fromhex(raw))
    assert number.special is special and not number.is_finite and number.decimal is None
    assert check(number.value)
    assert bytes(SFloat.from_special(special)).hex() == raw


def test_reserved_mantissa_with_exponent_is_a_number_flagged_ambiguous() -> None:
    number = SFloat.from_bytes(bytes.fromhex("fff7"))  # SPEC 1.1 edge, vector SFLOAT-19
    assert number.special is None and number.value == 204.7
    assert number.ambiguous_reserved_mantissa


def test_encoders() -> None:
    assert encode_sfloat(18.9) == bytes.fromhex("bdf0")
    assert encode_sfloat(120) == bytes.fromhex("7800")
    assert encode_sfloat(16.0, exponent=-1) == bytes.fromhex("a0f0")
    assert encode_sfloat(2047) == bytes(SFloat(205, 1))  # 2047 would be NaN: rounds instead
    assert encode_sfloat(math.nan) == bytes.fromhex("ff07")
    assert encode_sfloat(math.inf) == bytes.fromhex("fe07")
    assert encode_sfloat(-math.inf) == bytes.fromhex("0208")
    assert encode_float(37.0) == bytes.fromhex("25000000")
    assert encode_float(12345.67) == bytes.fromhex("87d612fe")
    assert encode_float(math.nan) == bytes.fromhex("ffff7f00")


@pytest.mark.parametrize(
    "call",
    [
        lambda: encode_sfloat(1e30),
        lambda: encode_sfloat(3000, exponent=0),
        lambda: encode_sfloat(1, exponent=8),
        lambda: encode_float(1e200),
        lambda: SFloat(2048, 0),
        lambda: SFloat(0, -9),
        lambda: encode_sfloat("12"),  # type: ignore[arg-type]
        lambda: DateTime(70000, 1, 1),
        lambda: DateTime(2024, 1, 256),
        lambda: MeasurementStatus(reserved_bits=0x01),
        lambda: BloodPressureMeasurement.from_values(120, 80, 93, user_id=256),
        lambda: BloodPressureMeasurement(
            PressureUnit.MMHG, SFloat(1, 0), SFloat(1, 0), SFloat(1, 0), reserved_flags=0x01
        ),
    ],
)
def test_unencodable_values_raise_encode_error(call) -> None:
    with pytest.raises(EncodeError):
        call()


def test_from_values_builds_what_a_cuff_sends() -> None:
    measurement = BloodPressureMeasurement.from_values(
        120,
        80,
        93,
        time_stamp=datetime(2024, 3, 15, 8, 30),
        pulse_rate=72,
        user_id=2,
        status=MeasurementStatus(),
    )
    assert bytes(measurement) == BPM_FULL
    assert (
        BloodPressureMeasurement.from_values(120, 80, math.nan).mean_arterial_pressure.special
        is SpecialValue.NAN
    )


def test_in_mmhg_converts_kpa_but_not_pulse() -> None:
    measurement = BloodPressureMeasurement.from_bytes(BPM_KPA)
    assert measurement.unit is PressureUnit.KPA
    mmhg = measurement.in_mmhg()
    assert mmhg.systolic == pytest.approx(18.9 * 7.500617)
    assert mmhg.diastolic == pytest.approx(11 * 7.500617)
    assert mmhg.mean_arterial_pressure == pytest.approx(15.9 * 7.500617)
    assert mmhg.pulse_rate == 60.0


def test_in_mmhg_keeps_mmhg_and_maps_specials_to_none() -> None:
    measurement = BloodPressureMeasurement.from_bytes(bytes.fromhex("0478005000ff074800"))
    mmhg = measurement.in_mmhg()
    assert (mmhg.systolic, mmhg.diastolic, mmhg.mean_arterial_pressure) == (120.0, 80.0, None)
    assert mmhg.pulse_rate == 72.0


def test_cuff_pressure_ignores_unused_slots() -> None:
    icp = decode("2A36", bytes.fromhex("019600ff07ff07"))
    assert isinstance(icp, IntermediateCuffPressure)
    assert icp.current_cuff_pressure_mmhg() == pytest.approx(150 * 7.500617)
    default = IntermediateCuffPressure(PressureUnit.MMHG, SFloat(150, 0))
    assert bytes(default) == bytes.fromhex("009600ff07ff07")


def test_status_fields() -> None:
    status = MeasurementStatus.from_int(0xFFFF)
    assert status.pulse_rate_range is PulseRateRange.RESERVED
    assert status.reserved_bits == 0xFFC0 and int(status) == 0xFFFF


def test_date_time_unknown_and_invalid() -> None:
    assert DateTime(0, 4, 17, 20, 41, 59).unknown_fields == ("year",)
    assert DateTime(0, 4, 17).to_datetime() is None
    assert DateTime(2024, 2, 30).to_datetime() is None
    assert DateTime(2024, 1, 2, 25).to_datetime() is None
    assert DateTime(2024, 1, 2, 10, 21, 48).to_datetime() == datetime(2024, 1, 2, 10, 21, 48)


def test_current_time_from_datetime() -> None:
    current = CurrentTime.from_datetime(datetime(2024, 3, 15, 8, 30, 0, 500_000))
    assert bytes(current) == bytes.fromhex("e807030f081e00058000")
    assert current.day_of_week is DayOfWeek.FRIDAY
    rfu = CurrentTime.from_bytes(bytes.fromhex("e807030f081e00c80000"))
    assert int(rfu.day_of_week) == 200 and rfu.day_of_week.text == "RFU_200"


def test_uuids() -> None:
    assert uuid128(uuids.BLOOD_PRESSURE_MEASUREMENT) == "00002a35-0000-1000-8000-00805f9b34fb"
    assert uuid128(uuids.BLOOD_PRESSURE_SERVICE) == "00001810-0000-1000-8000-00805f9b34fb"
    assert parse_uuid16("0000180a-0000-1000-8000-00805f9b34fb") == uuids.DEVICE_INFORMATION_SERVICE
    assert parse_uuid16("12345678-0000-1000-8000-00805f9b34fb") is None
    with pytest.raises(ValueError):
        uuid128(0x10000)


def test_to_jsonable_rejects_foreign_objects() -> None:
    with pytest.raises(TypeError):
        to_jsonable(object())
