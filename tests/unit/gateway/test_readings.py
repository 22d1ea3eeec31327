from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.codec import BloodPressureMeasurement, MeasurementStatus, PulseRateRange
from gateway.readings import blood_pressure_reading, measured_at
from homewatch.wire import DeviceIdentity, MeasurementFlag, ReadingsMessage

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
    assert measured_at(device_time, RECEIVED, UTC_ZONE) == RECEIVED


def test_no_time_stamp_uses_receive_time():
    r = reading("00bdf00b009ff0")  # 2A35-03 minimal
    assert r.device_time is None and r.measured_at == RECEIVED


def test_reading_round_trips_through_the_wire_message():
    r = reading("1e780050005d00e807030f081e004800020000")
    message = ReadingsMessage(gateway_id="gw-1", sent_at=RECEIVED, readings=[r])
    assert ReadingsMessage.from_bytes(message.to_bytes()) == message
