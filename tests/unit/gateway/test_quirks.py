"""The per-model quirk table (gateway/quirks.py, gateway/quirks.toml) and the Blood Pressure
byte quirks, checked against hand-written vendor bytes and the simulators' encoder."""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_simulators.vendor_quirks import (
    BP_BIG_ENDIAN_MODEL,
    GLUCOSE_CONTROL_SOLUTION_MODEL,
    GLUCOSE_DATE_TIME_CLOCK_MODEL,
    GLUCOSE_DESCENDING_SEQUENCE_MODEL,
    SIMULATED_MANUFACTURER,
    encode_blood_pressure,
)
from gateway.codec import (
    UNKNOWN_USER,
    BloodPressureMeasurement,
    DecodeError,
    MeasurementStatus,
    PressureUnit,
    PulseRateRange,
    SFloat,
)
from gateway.quirks import (
    NO_QUIRKS,
    PACKAGED_TABLE,
    DeviceQuirks,
    QuirkTableError,
    decode_blood_pressure,
    load_quirk_table,
)
from tests.unit.codec.test_codec_properties import measurements

BP_QUIRKS = DeviceQuirks(
    id="test-bp", bp_big_endian_pulse_and_status=True, bp_user_id_without_flag=True
)
BIG_ENDIAN_ONLY = DeviceQuirks(id="test-be", bp_big_endian_pulse_and_status=True)
USER_ID_ONLY = DeviceQuirks(id="test-uid", bp_user_id_without_flag=True)
QUIRK_FLAGS = (
    "bp_big_endian_pulse_and_status",
    "bp_user_id_without_flag",
    "glucose_sequence_descending",
    "clock_characteristic",
    "drop_control_solution",
)

# --- the packaged table ------------------------------------------------------------------------

SHIPPED = {
    BP_BIG_ENDIAN_MODEL: (
        "sim-bp-big-endian",
        {"bp_big_endian_pulse_and_status": True, "bp_user_id_without_flag": True},
    ),
    GLUCOSE_DESCENDING_SEQUENCE_MODEL: (
        "sim-gl-descending-sequence",
        {"glucose_sequence_descending": True},
    ),
    GLUCOSE_DATE_TIME_CLOCK_MODEL: ("sim-gl-date-time-clock", {"clock_characteristic": "2A08"}),
    GLUCOSE_CONTROL_SOLUTION_MODEL: ("sim-gl-control-solution", {"drop_control_solution": True}),
}


def packaged_toml() -> dict:
    text = resources.files("gateway").joinpath("quirks.toml").read_text("utf-8")
    return tomllib.loads(text)


def test_simulated_model_names_are_the_briefed_ones():
    assert SIMULATED_MANUFACTURER == "Homewatch Simulated"
    assert sorted(SHIPPED) == ["BP-Sim BE", "GL-Sim CS", "GL-Sim DT", "GL-Sim Rev"]


@pytest.mark.parametrize("model", sorted(SHIPPED))
@pytest.mark.parametrize(
    "spell_manufacturer, spell_model",
    [
        (lambda s: s, lambda s: s),
        (str.upper, str.lower),
        (lambda s: f"  {s.lower()}\t", lambda s: f" {s.upper()} \n"),
    ],
    ids=["as-written", "other-case", "padded"],
)
def test_each_shipped_entry_is_found_with_its_flags(model, spell_manufacturer, spell_model):
    table = load_quirk_table()
    quirks = table.for_device(spell_manufacturer(SIMULATED_MANUFACTURER), spell_model(model))
    entry_id, flags = SHIPPED[model]
    expected = DeviceQuirks(id=entry_id, description=quirks.description, **flags)
    assert quirks == expected
    assert quirks.any
    assert quirks.description


def test_shipped_flags_are_what_the_toml_says():
    table = load_quirk_table()
    devices = packaged_toml()["device"]
    assert len(devices) == len(table.entries) == len(SHIPPED)
    for raw in devices:
        for model in raw["models"]:
            quirks = table.for_device(raw["manufacturer"], model)
            assert quirks.id == raw["id"]
            assert quirks.description == raw["description"]
            for flag in QUIRK_FLAGS:
                default = None if flag == "clock_characteristic" else False
                assert getattr(quirks, flag) == raw.get(flag, default), flag
    for entry in table.entries:
        assert entry.file == PACKAGED_TABLE
        assert entry.source


@pytest.mark.parametrize(
    "manufacturer, model",
    [
        ("Acme", "BP-1"),
        (SIMULATED_MANUFACTURER, "BP-Sim"),  # a prefix is not a match without a pattern
        (SIMULATED_MANUFACTURER, "BP-Sim BE2"),
        ("Homewatch", BP_BIG_ENDIAN_MODEL),
        (None, BP_BIG_ENDIAN_MODEL),
        (SIMULATED_MANUFACTURER, None),
        ("", BP_BIG_ENDIAN_MODEL),
        (SIMULATED_MANUFACTURER, "   "),
    ],
)
def test_unknown_or_unidentified_devices_have_no_quirks(manufacturer, model):
    assert load_quirk_table().for_device(manufacturer, model) is NO_QUIRKS


def test_no_quirks_is_the_default_and_sets_nothing():
    assert NO_QUIRKS == DeviceQuirks()
    assert NO_QUIRKS.id == "none"
    assert not NO_QUIRKS.any


@pytest.mark.parametrize("flag", QUIRK_FLAGS)
def test_any_sees_every_single_quirk(flag):
    value = "2A08" if flag == "clock_characteristic" else True
    assert DeviceQuirks(**{flag: value}).any
    assert not DeviceQuirks(id="x", description="only words").any


# --- loader errors and the operator file --------------------------------------------------------

GOOD_ENTRY = """
[[device]]
id = "site-1"
manufacturer = "Acme"
models = ["BP-1"]
description = "test entry"
source = "bench capture 2024-03"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site-quirks.toml"
    path.write_text(text, "utf-8")
    return path


@pytest.mark.parametrize(
    "text, entry, reason",
    [
        (GOOD_ENTRY + "bp_big_endian = true\n", "site-1", "unknown key(s) ['bp_big_endian']"),
        (GOOD_ENTRY + "bp_user_id_without_flag = 1\n", "site-1", "'bp_user_id_without_flag'"),
        (GOOD_ENTRY + 'drop_control_solution = "yes"\n', "site-1", "must be true or false"),
        (GOOD_ENTRY.replace('["BP-1"]', '"BP-1"'), "site-1", "'models' must be a non-empty"),
        (GOOD_ENTRY.replace('["BP-1"]', "[]"), "site-1", "'models' must be a non-empty"),
        (GOOD_ENTRY.replace('["BP-1"]', '["BP-1", 2]'), "site-1", "'models' must be a non-empty"),
        (
            GOOD_ENTRY.replace('manufacturer = "Acme"\n', ""),
            "site-1",
            "['manufacturer'] (without a manufacturer and models the entry matches no device)",
        ),
        (GOOD_ENTRY.replace('"Acme"', '"  "'), "site-1", "'manufacturer' must be a non-empty"),
        (GOOD_ENTRY.replace('"Acme"', "7"), "site-1", "'manufacturer' must be a non-empty"),
        (GOOD_ENTRY.replace('source = "bench capture 2024-03"\n', ""), "site-1", "['source']"),
        (GOOD_ENTRY.replace('id = "site-1"\n', ""), "[[device]] #1", "['id']"),
        (GOOD_ENTRY.replace('"site-1"', '"none"'), "none", "not 'none'"),
        (GOOD_ENTRY.replace('"site-1"', '"site 1"'), "site 1", "letters, digits"),
        (GOOD_ENTRY + 'clock_characteristic = "2A2B"\n', "site-1", "not in ['2A08']"),
        (GOOD_ENTRY + "clock_characteristic = 0x2A08\n", "site-1", "non-empty string"),
        (GOOD_ENTRY + GOOD_ENTRY, "site-1", "duplicate id"),
        (
            GOOD_ENTRY + GOOD_ENTRY.replace("site-1", "site-2").replace("BP-1", " bp-1 "),
            "site-2",
            "model ' bp-1 ' is already listed by entry site-1",
        ),
        (GOOD_ENTRY + 'version = "1"\n', "site-1", "unknown key(s) ['version']"),
        ("version = 1\n" + GOOD_ENTRY, None, "unknown top-level key(s) ['version']"),
        ("device = 3\n", None, "array of tables"),
        ("device = [3]\n", "[[device]] #1", "must be a table"),
        ("[[device]\n", None, "not valid TOML"),
    ],
)
def test_a_bad_operator_file_is_a_clear_error(tmp_path, text, entry, reason):
    path = write(tmp_path, text)
    with pytest.raises(QuirkTableError) as caught:
        load_quirk_table(path)
    error = caught.value
    assert (error.file, error.entry) == (str(path), entry)
    assert reason in error.reason
    assert str(path) in str(error)
    assert isinstance(error, ValueError)


def test_a_missing_operator_file_is_a_clear_error(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(QuirkTableError, match="cannot read") as caught:
        load_quirk_table(path)
    assert caught.value.file == str(path)


def test_an_operator_file_adds_entries_and_normalises_the_clock(tmp_path):
    text = GOOD_ENTRY + 'bp_big_endian_pulse_and_status = true\nclock_characteristic = "0x2a08"\n'
    table = load_quirk_table(write(tmp_path, text))
    quirks = table.for_device("ACME ", "bp-1")
    assert quirks == DeviceQuirks(
        id="site-1",
        description="test entry",
        bp_big_endian_pulse_and_status=True,
        clock_characteristic="2A08",
    )
    assert table.for_device(SIMULATED_MANUFACTURER, BP_BIG_ENDIAN_MODEL).id == "sim-bp-big-endian"
    assert [entry.id for entry in table.entries][-1] == "site-1"
    assert table.entries[-1].source == "bench capture 2024-03"


def test_an_operator_entry_overrides_the_packaged_one_on_the_same_model(tmp_path):
    text = """
[[device]]
id = "site-cs-kept"
manufacturer = "HOMEWATCH SIMULATED"
models = ["gl-sim cs"]
description = "this site keeps control-solution records (audit)"
source = "site decision"
"""
    table = load_quirk_table(write(tmp_path, text))
    quirks = table.for_device(SIMULATED_MANUFACTURER, GLUCOSE_CONTROL_SOLUTION_MODEL)
    assert quirks.id == "site-cs-kept"
    assert not quirks.drop_control_solution
    assert not quirks.any
    # the other packaged entries are untouched
    dt = table.for_device(SIMULATED_MANUFACTURER, GLUCOSE_DATE_TIME_CLOCK_MODEL)
    assert dt.clock_characteristic == "2A08"
    # without the operator file the packaged quirk is back
    packaged = load_quirk_table().for_device(SIMULATED_MANUFACTURER, GLUCOSE_CONTROL_SOLUTION_MODEL)
    assert packaged.drop_control_solution


def test_an_operator_entry_with_a_packaged_id_replaces_that_entry(tmp_path):
    text = f"""
[[device]]
id = "sim-bp-big-endian"
manufacturer = "{SIMULATED_MANUFACTURER}"
models = ["BP-Sim BE2"]
description = "moved to another model"
source = "test"
bp_user_id_without_flag = true
"""
    table = load_quirk_table(write(tmp_path, text))
    assert table.for_device(SIMULATED_MANUFACTURER, BP_BIG_ENDIAN_MODEL) is NO_QUIRKS
    moved = table.for_device(SIMULATED_MANUFACTURER, "BP-Sim BE2")
    assert (moved.id, moved.bp_user_id_without_flag) == ("sim-bp-big-endian", True)
    assert not moved.bp_big_endian_pulse_and_status
    assert [entry.id for entry in table.entries].count("sim-bp-big-endian") == 1


def test_exact_models_beat_patterns_and_specific_patterns_beat_broad_ones(tmp_path):
    text = f"""
[[device]]
id = "broad"
manufacturer = "{SIMULATED_MANUFACTURER}"
models = ["GL-*"]
description = "every simulated meter"
source = "test"
glucose_sequence_descending = true

[[device]]
id = "narrow"
manufacturer = "{SIMULATED_MANUFACTURER}"
models = ["GL-Sim ?"]
description = "single-letter simulated meters"
source = "test"
drop_control_solution = true
"""
    table = load_quirk_table(write(tmp_path, text))
    assert table.for_device(SIMULATED_MANUFACTURER, "GL-Sim X").id == "narrow"
    assert table.for_device(SIMULATED_MANUFACTURER, "gl-sim x").id == "narrow"
    assert table.for_device(SIMULATED_MANUFACTURER, "GL-Other").id == "broad"
    assert table.for_device(SIMULATED_MANUFACTURER, "GL-Sim XY").id == "broad"
    # exact packaged models still win over the operator's patterns
    rev = table.for_device(SIMULATED_MANUFACTURER, GLUCOSE_DESCENDING_SEQUENCE_MODEL)
    assert rev.id == "sim-gl-descending-sequence"
    assert table.for_device("Other Vendor", "GL-Sim X") is NO_QUIRKS


# --- Blood Pressure Measurement bytes -----------------------------------------------------------

WITHIN = PulseRateRange.WITHIN

# Hand-written vendor bytes of the big-endian, user-id-without-flag cuff, field by field.
VENDOR_VECTORS = [
    pytest.param(
        # flags 0x14 (pulse, status; no user-id flag) | 120 | 80 | 93 mmHg
        # | pulse 72 big-endian 00 48 | user 2 | status 0x0004 (irregular pulse) big-endian
        "14780050005d000048020004",
        dict(pulse=72, user_id=2, status=MeasurementStatus(irregular_pulse=True), stamp=False),
        id="pulse-user-status",
    ),
    pytest.param(
        # the vendor also set the user-id flag (0x1C): tolerated, same reading
        "1c780050005d000048020004",
        dict(pulse=72, user_id=2, status=MeasurementStatus(irregular_pulse=True), stamp=False),
        id="flag-set-anyway",
    ),
    pytest.param(
        # flags 0x06 (time stamp, pulse) | 120/80/93 | 2024-03-15 08:30:00 | pulse 64 BE | user 1
        "06780050005d00e807030f081e00004001",
        dict(pulse=64, user_id=1, status=None, stamp=True),
        id="time-stamp-pulse-user",
    ),
    pytest.param(
        # flags 0x10 (status only) | 120/80/93 | user 0xFF unknown | status 0x0120 big-endian:
        # improper position (0x20) and RFU bit 8
        "10780050005d00ff0120",
        dict(
            pulse=None,
            user_id=UNKNOWN_USER,
            status=MeasurementStatus(improper_position=True, reserved_bits=0x0100),
            stamp=False,
        ),
        id="unknown-user-status",
    ),
    pytest.param(
        # flags 0x04 (pulse) | 120/80/93 | pulse big-endian 10 48 = 0x1048: exponent 1,
        # mantissa 72 -> 720 | user 3 | two trailing bytes (ignored, kept)
        "04780050005d00104803abcd",
        dict(pulse=720, user_id=3, status=None, stamp=False, trailing=b"\xab\xcd"),
        id="pulse-exponent-trailing",
    ),
]


@pytest.mark.parametrize("hex_payload, expected", VENDOR_VECTORS)
def test_vendor_bytes_decode_with_the_quirk(hex_payload, expected):
    raw = bytes.fromhex(hex_payload)
    m = decode_blood_pressure(raw, BP_QUIRKS)
    assert m.unit is PressureUnit.MMHG
    assert (m.in_mmhg().systolic, m.in_mmhg().diastolic) == (120, 80)
    assert m.in_mmhg().mean_arterial_pressure == 93
    assert m.in_mmhg().pulse_rate == expected["pulse"]
    assert m.user_id == expected["user_id"]
    assert m.status == expected["status"]
    assert (m.time_stamp is not None) == expected["stamp"]
    if expected["stamp"]:
        assert m.time_stamp.to_datetime().isoformat() == "2024-03-15T08:30:00"
    assert m.trailing_bytes == expected.get("trailing", b"")
    # what the simulators send for this reading is exactly these bytes, modulo the user-id
    # flag the device is allowed to set (the encoder never sets it)
    assert encode_blood_pressure(m, BP_QUIRKS) == bytes((raw[0] & ~0x08,)) + raw[1:]


@pytest.mark.parametrize("hex_payload, expected", VENDOR_VECTORS)
def test_the_same_bytes_without_the_quirk_are_wrong(hex_payload, expected):
    raw = bytes.fromhex(hex_payload)
    try:
        plain = BloodPressureMeasurement.from_bytes(raw)
    except DecodeError:
        return
    assert decode_blood_pressure(raw, NO_QUIRKS) == plain
    got = (plain.in_mmhg().pulse_rate, plain.user_id, plain.status)
    assert got != (expected["pulse"], expected["user_id"], expected["status"])


def test_each_bp_quirk_matters_on_its_own():
    # big-endian only: flags 0x14 with the user-id flag set properly (0x1C)
    raw = bytes.fromhex("1c780050005d000048020004")
    be = decode_blood_pressure(raw, BIG_ENDIAN_ONLY)
    assert (be.in_mmhg().pulse_rate, be.user_id, be.status) == (
        72,
        2,
        MeasurementStatus(irregular_pulse=True),
    )
    assert decode_blood_pressure(raw, USER_ID_ONLY).in_mmhg().pulse_rate != 72
    # user id only: little-endian pulse and status, user id without its flag
    raw = bytes.fromhex("14780050005d004800020400")
    uid = decode_blood_pressure(raw, USER_ID_ONLY)
    assert (uid.in_mmhg().pulse_rate, uid.user_id, uid.status) == (
        72,
        2,
        MeasurementStatus(irregular_pulse=True),
    )
    assert decode_blood_pressure(raw, BIG_ENDIAN_ONLY).user_id is None


def test_glucose_and_clock_quirks_leave_bp_bytes_alone():
    raw = bytes.fromhex("1e780050005d00e807030f081e004800020000")  # vectors.json 2A35-12
    glucose_only = DeviceQuirks(
        id="g", glucose_sequence_descending=True, drop_control_solution=True
    )
    expected = BloodPressureMeasurement.from_bytes(raw)
    assert decode_blood_pressure(raw, glucose_only) == expected
    assert decode_blood_pressure(raw, NO_QUIRKS) == expected


@pytest.mark.parametrize(
    "hex_payload, field",
    [
        ("", "pressure slots"),
        ("14780050005d", "pressure slots"),
        ("16780050005d00e807030f08", "Pulse Rate"),  # time stamp cut short
        ("14780050005d0000", "Pulse Rate"),
        # valid SIG bytes (pulse only), but this model always sends a user id after the pulse
        ("04780050005d000048", "User ID"),
        ("10780050005d00", "User ID"),
        ("14780050005d00004802", "Measurement Status"),
        ("14780050005d0000480200", "Measurement Status"),
    ],
)
def test_truncated_vendor_payloads_carry_the_original_hex(hex_payload, field):
    raw = bytes.fromhex(hex_payload)
    with pytest.raises(DecodeError) as caught:
        decode_blood_pressure(raw, BP_QUIRKS)
    error = caught.value
    assert error.characteristic == "2A35"
    assert error.payload == raw
    assert error.payload_hex == hex_payload
    assert field in error.reason
    assert "test-bp" in error.reason


def test_a_user_id_without_flag_payload_is_valid_sig_yet_short_for_the_quirk():
    raw = bytes.fromhex("04780050005d000048")
    assert BloodPressureMeasurement.from_bytes(raw).user_id is None  # the spec reading
    with pytest.raises(DecodeError):
        decode_blood_pressure(raw, USER_ID_ONLY)


bp_quirks = st.builds(
    DeviceQuirks,
    id=st.just("prop"),
    bp_big_endian_pulse_and_status=st.booleans(),
    bp_user_id_without_flag=st.booleans(),
)


@given(measurement=measurements, quirks=bp_quirks)
def test_encode_then_decode_round_trips(measurement, quirks):
    vendor = encode_blood_pressure(measurement, quirks)
    expected = measurement
    if quirks.bp_user_id_without_flag:
        assert not vendor[0] & 0x08
        if measurement.user_id is None:  # the device says "unknown user" instead of nothing
            expected = dataclasses.replace(measurement, user_id=UNKNOWN_USER)
    assert decode_blood_pressure(vendor, quirks) == expected
    assert len(vendor) == len(bytes(expected))


@given(measurement=measurements)
def test_without_bp_quirks_the_simulator_sends_sig_bytes(measurement):
    assert encode_blood_pressure(measurement, NO_QUIRKS) == bytes(measurement)


@given(payload=st.binary(max_size=32), quirks=bp_quirks)
def test_random_bytes_raise_only_decode_errors(payload, quirks):
    try:
        m = decode_blood_pressure(payload, quirks)
    except DecodeError as exc:
        assert exc.characteristic == "2A35"
        assert exc.payload == payload
        assert exc.reason
        return
    expected = payload
    if quirks.bp_user_id_without_flag:  # the one bit the simulators never set
        expected = bytes((payload[0] & ~0x08,)) + payload[1:]
    assert encode_blood_pressure(m, quirks) == expected


@given(payload=st.binary(max_size=32))
def test_no_quirks_is_exactly_the_plain_codec(payload):
    try:
        plain = BloodPressureMeasurement.from_bytes(payload)
    except DecodeError as exc:
        with pytest.raises(DecodeError) as caught:
            decode_blood_pressure(payload, NO_QUIRKS)
        assert caught.value.reason == exc.reason
        return
    assert decode_blood_pressure(payload, NO_QUIRKS) == plain


def test_sfloat_byte_order_of_the_vectors():
    # guards the hand-written vectors above: 72 is 0x0048, so its big-endian form is 00 48
    assert bytes(SFloat(72, 0)) == bytes.fromhex("4800")
    assert bytes(SFloat(72, 1)) == bytes.fromhex("4810")
