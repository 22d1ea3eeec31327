"""Glucose Service and RACP codecs: unit helpers, device time, friendly RACP constructors."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.codec import (
    DateTime,
    DecodeError,
    EncodeError,
    GlucoseFeature,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    GlucoseType,
    GlucoseUnit,
    MedicationUnit,
    RacpFilterType,
    RacpOpCode,
    RacpOperator,
    RacpRecordCount,
    RacpRequest,
    RacpResponse,
    RacpResponseValue,
    RecordFilter,
    SampleLocation,
    SensorStatusFlag,
    SFloat,
    decode,
    decode_racp,
    to_jsonable,
    uuid128,
    uuids,
)

BASE = DateTime(2024, 5, 1, 7, 30)


def _reading(concentration: SFloat, unit: GlucoseUnit) -> GlucoseMeasurement:
    return GlucoseMeasurement(
        1,
        BASE,
        concentration=concentration,
        unit=unit,
        sample_type=GlucoseType.CAPILLARY_WHOLE_BLOOD,
        sample_location=SampleLocation.FINGER,
    )


def test_kg_per_litre_is_not_mg_per_decilitre() -> None:
    reading = decode("2A18", bytes.fromhex("020500e8070501071e0041c011"))  # vector 2A18-06
    assert isinstance(reading, GlucoseMeasurement)
    assert reading.concentration == SFloat(65, -4)
    assert reading.concentration_mg_per_dl() == 650.0  # 0.0065 kg/L x 100 000
    assert reading.concentration_mmol_per_l() == pytest.approx(650 / 18.016)


def test_mol_per_litre_conversions() -> None:
    reading = _reading(SFloat(55, -4), GlucoseUnit.MOL_PER_L)
    assert reading.concentration_mmol_per_l() == 5.5  # exact x 1000
    assert reading.concentration_mg_per_dl() == pytest.approx(5.5 * 18.016)


def test_special_or_absent_concentration_has_no_number() -> None:
    high = _reading(SFloat.from_bytes(bytes.fromhex("fe07")), GlucoseUnit.KG_PER_L)
    assert high.concentration_mg_per_dl() is None and high.concentration_mmol_per_l() is None
    assert GlucoseMeasurement(1, BASE).concentration_mg_per_dl() is None


def test_measured_at_device_applies_the_signed_offset() -> None:
    reading = decode("2A18", bytes.fromhex("03ffffe8070101000a00e2ff5ab011"))  # vector 2A18-11
    assert isinstance(reading, GlucoseMeasurement)
    assert reading.sequence_number == 0xFFFF and reading.time_offset == -30
    assert reading.measured_at_device() == datetime(2023, 12, 31, 23, 40)
    assert GlucoseMeasurement(1, DateTime(0, 1, 1)).measured_at_device() is None
    late = GlucoseMeasurement(1, DateTime(9999, 12, 31, 23, 59), time_offset=10)
    assert late.measured_at_device() is None


def test_status_bits_and_control_solution() -> None:
    reading = decode("2A18", bytes.fromhex("0a0800e8070501071e00fe07f12000"))  # vector 2A18-09
    assert isinstance(reading, GlucoseMeasurement) and reading.sensor_status is not None
    assert SensorStatusFlag.RESULT_HIGHER_THAN_DEVICE_CAN_PROCESS in reading.sensor_status.flags
    rfu = decode("2A18", bytes.fromhex("080900e8070501071e000080"))
    assert isinstance(rfu, GlucoseMeasurement) and rfu.sensor_status is not None
    assert rfu.sensor_status.reserved_bits == 0x8000 and rfu.sensor_status.set_names == ()
    assert to_jsonable(rfu)["sensor_status_annunciation"]["reserved_bits_set"] is True
    control = decode("2A18", bytes.fromhex("020a00e8070501071e0064b04a"))  # vector 2A18-12
    assert isinstance(control, GlucoseMeasurement) and control.is_control_solution


def test_rfu_nibbles_and_flags_are_kept() -> None:
    payload = bytes.fromhex("e20500e8070501071e0041b0b0aa")
    reading = decode("2A18", payload)
    assert isinstance(reading, GlucoseMeasurement)
    assert reading.sample_type is not None and reading.sample_type.is_reserved
    assert reading.sample_type.text == "RFU" and int(reading.sample_type) == 0
    assert reading.sample_location is not None and int(reading.sample_location) == 11
    assert reading.reserved_flags == 0xE0 and reading.trailing_bytes == b"\xaa"
    assert bytes(reading) == payload


@pytest.mark.parametrize(
    "call",
    [
        lambda: GlucoseMeasurement(1, BASE, concentration=SFloat(1, 0)),  # no type/location
        lambda: GlucoseMeasurement(1, BASE, time_offset=0x8000),
        lambda: GlucoseMeasurement(0x10000, BASE),
        lambda: GlucoseMeasurement(1, BASE, reserved_flags=0x01),
        lambda: GlucoseFeature(0x10000),  # type: ignore[arg-type]
        lambda: GlucoseMeasurementContext(0x10000),
        lambda: RacpRequest(RacpOpCode.RESPONSE_CODE),
        lambda: RacpRequest(
            RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.GREATER_THAN_OR_EQUAL_TO
        ),
        lambda: RacpRequest(
            RacpOpCode.REPORT_STORED_RECORDS,
            RacpOperator.ALL_RECORDS,
            RecordFilter(RacpFilterType.SEQUENCE_NUMBER, (1,)),
        ),
        lambda: RacpRequest.report_records_in_range(1, 0x10000),
        lambda: RecordFilter(RacpFilterType.SEQUENCE_NUMBER, (BASE,)),
        lambda: RacpRecordCount(0x10000),
    ],
)
def test_unencodable_values_raise_encode_error(call) -> None:
    with pytest.raises(EncodeError):
        call()


def test_context_units_bit_without_medication_round_trips() -> None:
    payload = bytes.fromhex("200900")
    context = decode("2A34", payload)
    assert isinstance(context, GlucoseMeasurementContext)
    assert context.medication is None and context.medication_unit is MedicationUnit.LITRES
    assert bytes(context) == payload


@pytest.mark.parametrize(
    ("request_", "wire"),
    [
        (RacpRequest.report_all_records(), "0101"),
        (RacpRequest.report_number_of_records(), "0401"),
        (RacpRequest.report_records_greater_or_equal(10), "0103010a00"),
        (RacpRequest.report_records_less_or_equal(10), "0102010a00"),
        (RacpRequest.report_records_in_range(10, 20), "0104010a001400"),
        (RacpRequest.report_first_record(), "0105"),
        (RacpRequest.report_last_record(), "0106"),
        (RacpRequest.report_number_of_records_greater_or_equal(258), "0403010201"),
        (
            RacpRequest.report_records_since(datetime(2024, 1, 31, 23, 59, 59)),
            "010302e807011f173b3b",
        ),
        (RacpRequest.delete_all_records(), "0201"),
        (RacpRequest.abort(), "0300"),
    ],
)
def test_racp_requests_match_spec_examples(request_: RacpRequest, wire: str) -> None:
    assert bytes(request_).hex() == wire
    assert decode_racp(bytes.fromhex(wire)) == request_


def test_racp_responses() -> None:
    count = decode_racp(bytes.fromhex("05002a00"))
    assert isinstance(count, RacpRecordCount) and count.number_of_records == 42
    done = decode_racp(bytes.fromhex("06000106"))
    assert isinstance(done, RacpResponse) and done.completed and not done.is_success
    assert done.request_op_code is RacpOpCode.REPORT_STORED_RECORDS
    assert bytes(RacpResponse(RacpOpCode.ABORT_OPERATION, RacpResponseValue.SUCCESS)) == bytes(
        [6, 0, 3, 1]
    )


def test_racp_unknown_codes_are_kept_and_reported() -> None:
    response = decode_racp(bytes.fromhex("06000c0a"))
    assert isinstance(response, RacpResponse)
    assert response.request_op_code.is_reserved and response.response_code.is_reserved
    assert (response.request_op_code.text, response.response_code.text) == ("RFU", "RFU")
    assert not response.completed
    odd = decode_racp(bytes.fromhex("0107aabb"))  # RFU operator: operand kept raw
    assert isinstance(odd, RacpRequest) and odd.operator.is_reserved
    assert odd.operand_bytes == b"\xaa\xbb" and bytes(odd).hex() == "0107aabb"
    assert to_jsonable(odd)["operand_bytes"] == "aabb"
    rfu_filter = decode_racp(bytes.fromhex("01030901"))  # RFU filter type: value size unknown
    assert isinstance(rfu_filter, RacpRequest) and rfu_filter.filter is not None
    assert rfu_filter.filter.values == () and rfu_filter.operand_bytes == b"\x01"


@pytest.mark.parametrize(
    ("hex_", "reason"),
    [
        ("", "truncated: need 1 byte(s) for Op Code at offset 0, payload has 0"),
        ("01", "truncated: need 1 byte(s) for Operator at offset 1, payload has 1"),
        ("0103", "truncated: need 1 byte(s) for Filter Type at offset 2, payload has 2"),
        ("0104010a00", "need 2 byte(s) for Sequence Number operand at offset 5"),
        ("010302e807", "need 7 byte(s) for User Facing Time operand at offset 3"),
        ("0600010100", "Response Code must be exactly 4 byte(s), got 5"),
        ("0500", "must be 4 bytes (uint16 count for this service), got 2"),
    ],
)
def test_racp_malformed(hex_: str, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode("2A52", bytes.fromhex(hex_))
    assert reason in info.value.reason and info.value.characteristic == "2A52"


def test_class_decoders_refuse_the_other_direction() -> None:
    with pytest.raises(DecodeError, match="is not a request"):
        RacpRequest.from_bytes(bytes.fromhex("06000101"))
    with pytest.raises(DecodeError, match=r"op code 0x01 is not 0x06"):
        RacpResponse.from_bytes(bytes.fromhex("0101"))


def test_glucose_uuids() -> None:
    assert uuid128(uuids.GLUCOSE_MEASUREMENT) == "00002a18-0000-1000-8000-00805f9b34fb"
    assert uuids.RECORD_ACCESS_CONTROL_POINT == 0x2A52
    assert decode(uuid128(uuids.GLUCOSE_FEATURE), b"\x03\x04") == GlucoseFeature(0x0403)  # type: ignore[arg-type]
