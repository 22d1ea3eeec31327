"""Property-based round trips: whatever the encoder writes, the decoder reads back identically."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from gateway.codec import (
    AdjustReason,
    BloodPressureFeature,
    BloodPressureFeatureFlag,
    BloodPressureMeasurement,
    Carbohydrate,
    CarbohydrateId,
    CurrentTime,
    DateTime,
    DayOfWeek,
    Exercise,
    Float32,
    GlucoseFeature,
    GlucoseFeatureFlag,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    GlucoseType,
    GlucoseUnit,
    Health,
    IntermediateCuffPressure,
    Meal,
    MeasurementStatus,
    MedFloat,
    Medication,
    MedicationId,
    MedicationUnit,
    PressureUnit,
    PulseRateRange,
    RacpFilterType,
    RacpOpCode,
    RacpOperator,
    RacpRecordCount,
    RacpRequest,
    RacpResponse,
    RacpResponseValue,
    RecordFilter,
    SampleLocation,
    SampleTester,
    SampleTesterHealth,
    SensorStatus,
    SensorStatusFlag,
    SFloat,
    decode_racp,
)

sfloats = st.builds(SFloat, st.integers(-2048, 2047), st.integers(-8, 7))
float32s = st.builds(Float32, st.integers(-(2**23), 2**23 - 1), st.integers(-128, 127))
u8 = st.integers(0, 255)
date_times = st.builds(DateTime, st.integers(0, 0xFFFF), u8, u8, u8, u8, u8)
current_times = st.builds(CurrentTime, date_times, u8.map(DayOfWeek), u8, u8.map(AdjustReason))
statuses = st.builds(
    MeasurementStatus,
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.sampled_from(PulseRateRange),
    st.booleans(),
    st.integers(0, 0x3FF).map(lambda b: b << 6),
)
common = {
    "unit": st.sampled_from(PressureUnit),
    "time_stamp": st.none() | date_times,
    "pulse_rate": st.none() | sfloats,
    "user_id": st.none() | u8,
    "status": st.none() | statuses,
    "reserved_flags": st.sampled_from([0, 0x20, 0x40, 0x80, 0xE0]),
    "trailing_bytes": st.binary(max_size=3),
}
measurements = st.builds(
    BloodPressureMeasurement,
    systolic=sfloats,
    diastolic=sfloats,
    mean_arterial_pressure=sfloats,
    **common,
)
cuff_pressures = st.builds(
    IntermediateCuffPressure,
    current_cuff_pressure=sfloats,
    diastolic_unused=sfloats,
    map_unused=sfloats,
    **common,
)
features = st.builds(BloodPressureFeature, st.integers(0, 0xFFFF).map(BloodPressureFeatureFlag))

u16 = st.integers(0, 0xFFFF)
nibble = st.integers(0, 15)


@st.composite
def glucose_measurements(draw: st.DrawFn) -> GlucoseMeasurement:
    sample = draw(
        st.none() | st.tuples(sfloats, nibble.map(GlucoseType), nibble.map(SampleLocation))
    )
    concentration, sample_type, location = sample if sample else (None, None, None)
    return GlucoseMeasurement(
        draw(u16),
        draw(date_times),
        draw(st.none() | st.integers(-0x8000, 0x7FFF)),
        concentration,
        draw(st.sampled_from(GlucoseUnit)),
        sample_type,
        location,
        draw(st.none() | u16.map(lambda raw: SensorStatus(SensorStatusFlag(raw)))),
        draw(st.booleans()),
        draw(st.sampled_from([0, 0x20, 0x40, 0x80, 0xE0])),
        draw(st.binary(max_size=3)),
    )


glucose_contexts = st.builds(
    GlucoseMeasurementContext,
    sequence_number=u16,
    extended_flags=st.none() | u8,
    carbohydrate=st.none() | st.builds(Carbohydrate, u8.map(CarbohydrateId), sfloats),
    meal=st.none() | u8.map(Meal),
    tester_health=st.none()
    | st.builds(SampleTesterHealth, nibble.map(SampleTester), nibble.map(Health)),
    exercise=st.none() | st.builds(Exercise, u16, u8),
    medication=st.none() | st.builds(Medication, u8.map(MedicationId), sfloats),
    medication_unit=st.sampled_from(MedicationUnit),
    hba1c_pct=st.none() | sfloats,
    trailing_bytes=st.binary(max_size=3),
)
glucose_features = st.builds(GlucoseFeature, u16.map(GlucoseFeatureFlag))


@st.composite
def racp_requests(draw: st.DrawFn) -> RacpRequest:
    op_code = draw(u8.filter(lambda code: code not in (5, 6)).map(RacpOpCode))
    operator = draw(u8.map(RacpOperator))
    count = operator.operand_values if 1 <= op_code <= 4 else None
    record_filter = None
    if count is not None:
        filter_type = draw(u8.map(RacpFilterType))
        if filter_type is RacpFilterType.SEQUENCE_NUMBER:
            record_filter = RecordFilter(filter_type, tuple(draw(u16) for _ in range(count)))
        elif filter_type is RacpFilterType.USER_FACING_TIME:
            values = tuple(draw(date_times) for _ in range(count))
            record_filter = RecordFilter(filter_type, values)
        else:
            record_filter = RecordFilter(filter_type)
    return RacpRequest(op_code, operator, record_filter, draw(st.binary(max_size=4)))


racp_counts = st.builds(RacpRecordCount, u16, u8.map(RacpOperator))
racp_responses = st.builds(
    RacpResponse, u8.map(RacpOpCode), u8.map(RacpResponseValue), u8.map(RacpOperator)
)


def _round_trips(obj: object) -> None:
    payload = bytes(obj)  # type: ignore[call-overload]
    again = type(obj).from_bytes(payload)  # type: ignore[attr-defined]
    assert again == obj
    assert bytes(again) == payload


@given(st.one_of(sfloats, float32s))
def test_medfloat_wire_round_trip(number: MedFloat) -> None:
    _round_trips(number)
    assert type(number).from_raw(number.raw) == number
    assert len(bytes(number)) == number.SIZE


@given(date_times)
def test_date_time_round_trip(value: DateTime) -> None:
    _round_trips(value)


@given(current_times)
def test_current_time_round_trip(value: CurrentTime) -> None:
    _round_trips(value)


@given(measurements)
def test_measurement_round_trip(value: BloodPressureMeasurement) -> None:
    _round_trips(value)


@given(cuff_pressures)
def test_cuff_pressure_round_trip(value: IntermediateCuffPressure) -> None:
    _round_trips(value)


@given(features)
def test_feature_round_trip(value: BloodPressureFeature) -> None:
    _round_trips(value)


@given(glucose_measurements())
def test_glucose_measurement_round_trip(value: GlucoseMeasurement) -> None:
    _round_trips(value)


@given(glucose_contexts)
def test_glucose_context_round_trip(value: GlucoseMeasurementContext) -> None:
    _round_trips(value)


@given(glucose_features)
def test_glucose_feature_round_trip(value: GlucoseFeature) -> None:
    _round_trips(value)


@given(st.one_of(racp_requests(), racp_counts, racp_responses))
def test_racp_round_trip(value: RacpRequest | RacpRecordCount | RacpResponse) -> None:
    _round_trips(value)
    assert decode_racp(bytes(value)) == value


@given(st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
def test_datetime_conversion_round_trip(dt: datetime) -> None:
    assert DateTime.from_datetime(dt).to_datetime() == dt.replace(microsecond=0)
    current = CurrentTime.from_datetime(dt)
    assert CurrentTime.from_bytes(bytes(current)) == current
    assert current.day_of_week == dt.isoweekday()
    restored = current.to_datetime()
    assert restored is not None and abs((restored - dt).total_seconds()) < 1 / 256


def _check_encoding(cls: type[MedFloat], number: float) -> None:
    encoded = cls.from_value(number)
    exact = Decimal(repr(number))
    assert encoded.is_finite and not encoded.ambiguous_reserved_mantissa
    assert abs(encoded.mantissa) <= cls.max_finite_mantissa()
    got = encoded.decimal
    assert got is not None
    e_min = cls.exponent_range()[0]
    if encoded.mantissa == 0:  # zero, or too small for the finest exponent
        assert abs(exact) <= Decimal(5).scaleb(e_min - 1)
        return
    # never further than half a unit in the last place of the chosen exponent...
    assert abs(got - exact) <= Decimal(5).scaleb(encoded.exponent - 1)
    # ...and that exponent is the finest possible when the value is not exact
    if got != exact and encoded.exponent > e_min:
        finer = exact.scaleb(1 - encoded.exponent).to_integral_value()
        assert abs(finer) > cls.max_finite_mantissa()
    assert cls.from_bytes(bytes(encoded)) == encoded


@given(st.floats(min_value=-2045e7, max_value=2045e7, allow_nan=False))
def test_sfloat_encoder_best_precision(number: float) -> None:
    _check_encoding(SFloat, number)


@given(st.floats(min_value=-8388605e127, max_value=8388605e127, allow_nan=False))
def test_float_encoder_best_precision(number: float) -> None:
    _check_encoding(Float32, number)


@given(st.integers(-2045, 2045), st.integers(-8, 7))
def test_sfloat_representable_values_come_back_exactly(mantissa: int, exponent: int) -> None:
    number = float(Decimal(mantissa).scaleb(exponent))
    assert SFloat.from_value(number).value == number
    assert SFloat.from_value(number, exponent=exponent) == SFloat(mantissa, exponent)


@given(st.integers(-0x7FFFFD, 0x7FFFFD), st.integers(-128, 127))
def test_float_representable_values_come_back_exactly(mantissa: int, exponent: int) -> None:
    number = float(Decimal(mantissa).scaleb(exponent))
    assert Float32.from_value(number).value == number
