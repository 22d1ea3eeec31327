from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.codec import BloodPressureMeasurement, MeasurementStatus, PulseRateRange
from gateway.device_time import ClockCheck, when_measured
from gateway.readings import blood_pressure_reading
from homewatch.wire import DeviceIdentity, MeasurementFlag, ReadingsMessage, TimeSource

DEVICE = DeviceIdentity(
    address="C0:5A:00:00:00:01", manufacturer="Acme", model="BP-1", serial_number="S1"
)
RECEIVED = datetime(2024, 3, 15, 9, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


def reading(hex_payload: str, received: datetime = RECEIVED, tz: ZoneInfo = UTC_ZONE):
    raw = bytes.fromhex(hex_payload)
    return blood_pressure_reading(
        BloodPressureMeasurement.from_bytes(raw), raw, DEVICE, received, tz
    )


def test_all_fields_vector_becomes_a_wire_reading():
    r = reading("1e780050005d00e807030f081e004800020000")  # vectors.json 2A35-12
    assert (
        r.values.systolic.value,
        r.values.diastolic.value,
        r.values.mean_arterial_pressure.value,
    ) == (120, 80, 93)
    assert (
        r.values.pulse_rate.value == 72
        and r.values.user_id == 2
        and r.values.reported_unit == "mmHg"
    )
    assert r.device_time == datetime(2024, 3, 15, 8, 30)
    assert r.measured_at == datetime(2024, 3, 15, 8, 30, tzinfo=UTC)
    assert (
        r.received_at == RECEIVED
        and r.flags == []
        and r.raw == "1e780050005d00e807030f081e004800020000"
    )


def test_kpa_is_normalised_to_mmhg_and_pulse_is_not_converted():
    r = reading("05a0f06bf07df0d5f2")  # 2A35-13: 16.0/10.7/12.5 kPa, pulse 72.5
    assert r.values.reported_unit == "kPa"
    assert r.values.systolic.value == pytest.approx(120.0099, abs=1e-3)
    assert r.values.diastolic.value == pytest.approx(80.2566, abs=1e-3)
    assert r.values.pulse_rate.value == 72.5


def test_nan_mean_arterial_pressure_is_null_not_2047():
    r = reading("0478005000ff074800")  # 2A35-14
    assert r.values.mean_arterial_pressure.value is None
    assert r.values.systolic.value == 120


def test_status_bits_become_flags():
    r = reading("30780050005d000900")  # 2A35-16: body movement + pulse above range
    assert r.flags == [MeasurementFlag.BODY_MOVEMENT, MeasurementFlag.PULSE_RATE_ABOVE_RANGE]
    m = BloodPressureMeasurement.from_values(
        150, 90, 110,
        status=MeasurementStatus(cuff_too_loose=True, irregular_pulse=True,
                                 pulse_rate_range=PulseRateRange.BELOW, improper_position=True),
    )  # fmt: skip
    raw = bytes(m)
    r2 = blood_pressure_reading(m, raw, DEVICE, RECEIVED, UTC_ZONE)
    assert r2.flags == [
        MeasurementFlag.CUFF_TOO_LOOSE,
        MeasurementFlag.IRREGULAR_PULSE,
        MeasurementFlag.PULSE_RATE_BELOW_RANGE,
        MeasurementFlag.IMPROPER_POSITION,
    ]


def test_reading_id_is_deterministic_per_device_record():
    a = reading("1e780050005d00e807030f081e004800020000")
    again = reading(
        "1e780050005d00e807030f081e004800020000", received=RECEIVED + timedelta(hours=1)
    )
    other_values = reading("1e790050005d00e807030f081e004800020000")
    assert a.reading_id == again.reading_id  # a re-sent stored record keeps its id
    assert a.reading_id != other_values.reading_id
    other_device = blood_pressure_reading(
        BloodPressureMeasurement.from_bytes(bytes.fromhex(a.raw)), bytes.fromhex(a.raw),
        DEVICE.model_copy(update={"serial_number": "S2"}), RECEIVED, UTC_ZONE,
    )  # fmt: skip
    assert other_device.reading_id != a.reading_id


def test_device_time_zone_is_applied():
    r = reading("1e780050005d00e807030f081e004800020000", tz=ZoneInfo("Europe/Moscow"))
    assert r.measured_at == datetime(2024, 3, 15, 5, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "device_time",
    [datetime(2024, 3, 15, 9, 30), datetime(2000, 1, 1, 0, 0)],
    ids=["clock-ahead", "clock-never-set"],
)
def test_implausible_device_clock_falls_back_to_receive_time(device_time):
    assert when_measured(device_time, RECEIVED, UTC_ZONE, ClockCheck.unknown()) == (
        RECEIVED,
        TimeSource.RECEIVED,
    )


def test_no_time_stamp_uses_receive_time():
    r = reading("00bdf00b009ff0")  # 2A35-03 minimal
    assert r.device_time is None and r.measured_at == RECEIVED


def test_reading_round_trips_through_the_wire_message():
    r = reading("1e780050005d00e807030f081e004800020000")
    message = ReadingsMessage(gateway_id="gw-1", sent_at=RECEIVED, readings=[r])
    assert ReadingsMessage.from_bytes(message.to_bytes()) == message


# --- glucose -------------------------------------------------------------------------------


def glucose(measurement_hex: str, context_hex: str | None = None):
    from gateway.codec.glucose import GlucoseMeasurement
    from gateway.codec.glucose_context import GlucoseMeasurementContext
    from gateway.glucose_transfer import GlucoseRecord
    from gateway.readings import glucose_reading

    raw = bytes.fromhex(measurement_hex)
    raw_context = None if context_hex is None else bytes.fromhex(context_hex)
    record = GlucoseRecord(
        GlucoseMeasurement.from_bytes(raw),
        raw,
        None if raw_context is None else GlucoseMeasurementContext.from_bytes(raw_context),
        raw_context,
    )
    return glucose_reading(record, DEVICE, RECEIVED, UTC_ZONE)


def test_glucose_in_kg_per_l_becomes_mg_per_dl_and_mmol_per_l():
    # flags 0x03 (time offset, concentration kg/L), seq 1, 2024-03-15 08:30:00, offset -5 min,
    # 0xB05A = 90e-5 kg/L = 90 mg/dL, capillary plasma from the finger (0x12).
    r = glucose("030100e807030f081e00fbff5ab012")
    assert r.values.mg_per_dl.value == pytest.approx(90)
    assert r.values.mmol_per_l.value == pytest.approx(90 / 18.016)
    assert r.values.reported_unit == "kg/L"
    assert (r.values.sample_type, r.values.sample_location) == ("capillary_plasma", "finger")
    assert r.sequence_number == 1 and r.device_time == datetime(2024, 3, 15, 8, 25)
    assert r.measured_at == datetime(2024, 3, 15, 8, 25, tzinfo=UTC)
    assert not r.control_solution and r.context is None


def test_glucose_in_mol_per_l_and_a_special_value():
    # flags 0x06 (concentration, mol/L): 0xC037 = 55e-4 mol/L = 5.5 mmol/L.
    r = glucose("060200e807030f081e0037c011")
    assert r.values.mmol_per_l.value == pytest.approx(5.5)
    assert r.values.mg_per_dl.value == pytest.approx(5.5 * 18.016)
    hi = glucose("060300e807030f081e00fe0711")  # +INF: above the meter's range
    assert hi.values.mmol_per_l.value is None and hi.values.mg_per_dl.value is None


def test_glucose_context_is_converted_to_clinical_units():
    # context flags 0x5B: carbohydrate, meal, exercise, medication (kg), HbA1c;
    # seq 1; breakfast 0xD032 = 50e-3 kg = 50 g; postprandial; exercise 1800 s at 60 %;
    # rapid-acting insulin 0xA00A... = 10e-6 kg = 10 mg; HbA1c 0xF041 = 6.5 %.
    r = glucose(
        "120100e807030f081e005ab012",
        "5b01000132d00208073c010aa041f0",
    )
    c = r.context
    assert c is not None and r.raw_context is not None
    assert (c.carbohydrate, c.carbohydrate_grams) == ("breakfast", pytest.approx(50))
    assert c.meal == "postprandial"
    assert (c.exercise_duration_seconds, c.exercise_intensity_percent) == (1800, 60)
    assert (c.medication, c.medication_milligrams) == ("rapid_acting_insulin", pytest.approx(10))
    assert c.medication_millilitres is None
    assert c.hba1c_percent == pytest.approx(6.5)
