"""Every shared BLE test vector for the characteristics the codec supports, field by field."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gateway.codec import (
    BloodPressureFeature,
    BloodPressureMeasurement,
    CurrentTime,
    DateTime,
    DecodeError,
    IntermediateCuffPressure,
    MeasurementStatus,
    MedFloat,
    decode,
    to_jsonable,
)

SUPPORTED = ("SFLOAT", "FLOAT", "2A08", "2A2B", "2A35", "2A36", "2A49")
#: How many vectors of each supported characteristic shared/ble/vectors.json holds today. A change
#: in the file must show up here, so a filter or a renamed field cannot silently empty the table.
EXPECTED_COUNTS = {
    "SFLOAT": 12,
    "FLOAT": 10,
    "2A08": 2,
    "2A2B": 2,
    "2A35": 12,
    "2A36": 2,
    "2A49": 3,
}


def vectors_path() -> Path:
    shared = os.environ.get("HOMEWATCH_SHARED_DIR")
    base = Path(shared) if shared else Path(__file__).resolve().parents[3] / ".." / "shared"
    return base / "ble" / "vectors.json"


def _load() -> tuple[list[dict[str, Any]], str | None]:
    path = vectors_path()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [], f"cannot load BLE test vectors from {path} ({exc}); set HOMEWATCH_SHARED_DIR"
    return [v for v in document["vectors"] if v["characteristic"] in SUPPORTED], None


VECTORS, LOAD_ERROR = _load()
GOOD = [pytest.param(v, id=v["id"]) for v in VECTORS if "error" not in v["expected"]]
BAD = [pytest.param(v, id=v["id"]) for v in VECTORS if "error" in v["expected"]]


def test_vectors_are_loaded_and_all_exercised() -> None:
    assert LOAD_ERROR is None, LOAD_ERROR
    assert dict(Counter(v["characteristic"] for v in VECTORS)) == EXPECTED_COUNTS
    assert len(GOOD) + len(BAD) == sum(EXPECTED_COUNTS.values()) == 43
    assert len(BAD) == 7


def test_missing_vectors_file_is_reported_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOMEWATCH_SHARED_DIR", str(tmp_path))
    assert vectors_path() == tmp_path / "ble" / "vectors.json"
    vectors, error = _load()
    assert vectors == []
    assert error is not None and str(tmp_path) in error and "HOMEWATCH_SHARED_DIR" in error


# -- field-by-field checkers: each returns the expected keys it checked ------------------------
def check_medfloat(obj: MedFloat, exp: dict[str, Any]) -> set[str]:
    assert f"0x{obj.raw:0{obj.SIZE * 2}X}" == exp["raw"]
    assert (obj.mantissa, obj.exponent) == (exp["mantissa"], exp["exponent"])
    if "special" in exp:
        assert obj.special is not None and obj.special.value == exp["special"]
        assert exp["value"] is None
    else:
        assert obj.special is None
        assert obj.value == exp["value"]
        assert repr(obj.value) == repr(float(exp["value"]))  # no float artefacts
    assert obj.ambiguous_reserved_mantissa == exp.get("ambiguous_reserved_mantissa", False)
    return {"raw", "mantissa", "exponent", "special", "value", "ambiguous_reserved_mantissa"}


def check_date_time(obj: DateTime, exp: dict[str, Any]) -> set[str]:
    fields = ("year", "month", "day", "hours", "minutes", "seconds")
    assert {f: getattr(obj, f) for f in fields} == {f: exp[f] for f in fields}
    assert list(obj.unknown_fields) == exp.get("unknown_fields", [])
    return {*fields, "unknown_fields"}


def check_current_time(obj: CurrentTime, exp: dict[str, Any]) -> set[str]:
    check_date_time(obj.date_time, exp["date_time"])
    assert int(obj.day_of_week) == exp["day_of_week"]
    assert obj.day_of_week.text == exp["day_of_week_text"]
    assert obj.fractions256 == exp["fractions256"]
    reason, exp_reason = obj.adjust_reason, exp["adjust_reason"]
    assert f"0x{int(reason):02X}" == exp_reason["raw"]
    assert bool(reason & reason.MANUAL_TIME_UPDATE) == exp_reason["manual_time_update"]
    assert (
        bool(reason & reason.EXTERNAL_REFERENCE_TIME_UPDATE)
        == exp_reason["external_reference_time_update"]
    )
    assert bool(reason & reason.CHANGE_OF_TIME_ZONE) == exp_reason["change_of_time_zone"]
    assert bool(reason & reason.CHANGE_OF_DST) == exp_reason["change_of_dst"]
    return {"date_time", "day_of_week", "day_of_week_text", "fractions256", "adjust_reason"}


def check_status(obj: MeasurementStatus, exp: dict[str, Any]) -> None:
    assert f"0x{obj.raw:04X}" == exp["raw"]
    assert obj.body_movement == exp["body_movement"]
    assert obj.cuff_too_loose == exp["cuff_too_loose"]
    assert obj.irregular_pulse == exp["irregular_pulse"]
    assert int(obj.pulse_rate_range) == exp["pulse_rate_range"]
    assert obj.pulse_rate_range.text == exp["pulse_rate_range_text"]
    assert obj.improper_position == exp["improper_measurement_position"]
    assert bool(obj.reserved_bits) == exp["reserved_bits_set"]


def check_bp_layout(
    obj: BloodPressureMeasurement | IntermediateCuffPressure, exp: dict[str, Any], slots: dict
) -> set[str]:
    assert f"0x{int(obj.flags):02X}" == exp["flags"]
    assert obj.unit.label == exp["unit"]
    assert obj.reserved_flags == int(exp.get("reserved_flag_bits_set", "0x00"), 16)
    for key, value in slots.items():
        check_medfloat(value, exp[key])
    assert (obj.time_stamp is None) == ("time_stamp" not in exp)
    if obj.time_stamp is not None:
        check_date_time(obj.time_stamp, exp["time_stamp"])
    assert (obj.pulse_rate is None) == ("pulse_rate_bpm" not in exp)
    if obj.pulse_rate is not None:
        check_medfloat(obj.pulse_rate, exp["pulse_rate_bpm"])
    assert obj.user_id == exp.get("user_id")
    assert (obj.user_id == 255) == ("user_id_text" in exp)
    assert (obj.status is None) == ("measurement_status" not in exp)
    if obj.status is not None:
        check_status(obj.status, exp["measurement_status"])
    assert obj.trailing_bytes == b""
    return {
        *slots,
        "flags",
        "unit",
        "reserved_flag_bits_set",
        "time_stamp",
        "pulse_rate_bpm",
        "user_id",
        "user_id_text",
        "measurement_status",
    }


def check(characteristic: str, obj: object, exp: dict[str, Any]) -> set[str]:
    if characteristic in ("SFLOAT", "FLOAT"):
        assert isinstance(obj, MedFloat) and obj.NAME == characteristic
        return check_medfloat(obj, exp)
    if characteristic == "2A08":
        assert isinstance(obj, DateTime)
        return check_date_time(obj, exp)
    if characteristic == "2A2B":
        assert isinstance(obj, CurrentTime)
        return check_current_time(obj, exp)
    if characteristic == "2A35":
        assert isinstance(obj, BloodPressureMeasurement)
        slots = {
            "systolic": obj.systolic,
            "diastolic": obj.diastolic,
            "mean_arterial_pressure": obj.mean_arterial_pressure,
        }
        return check_bp_layout(obj, exp, slots)
    if characteristic == "2A36":
        assert isinstance(obj, IntermediateCuffPressure)
        slots = {
            "current_cuff_pressure": obj.current_cuff_pressure,
            "diastolic_unused": obj.diastolic_unused,
            "map_unused": obj.map_unused,
        }
        return check_bp_layout(obj, exp, slots)
    assert characteristic == "2A49" and isinstance(obj, BloodPressureFeature)
    assert f"0x{int(obj.features):04X}" == exp["raw"]
    assert list(obj.supported) == exp["supported"]
    return {"raw", "supported"}


@pytest.mark.parametrize("vector", GOOD)
def test_decode_matches_expected(vector: dict[str, Any]) -> None:
    obj = decode(vector["characteristic"], bytes.fromhex(vector["hex"]))
    checked = check(vector["characteristic"], obj, vector["expected"])
    assert set(vector["expected"]) <= checked, "expected keys this test does not check"


def _assert_subset(actual: Any, expected: Any, path: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing"
            _assert_subset(actual[key], value, f"{path}.{key}")
    else:
        assert actual == expected, path


@pytest.mark.parametrize("vector", GOOD)
def test_to_jsonable_has_the_vector_shape(vector: dict[str, Any]) -> None:
    obj = decode(vector["characteristic"], bytes.fromhex(vector["hex"]))
    document = to_jsonable(obj)
    json.dumps(document, allow_nan=False)
    _assert_subset(document, vector["expected"])


@pytest.mark.parametrize("vector", BAD)
def test_malformed_vectors_raise_decode_error(vector: dict[str, Any]) -> None:
    payload = bytes.fromhex(vector["hex"])
    with pytest.raises(DecodeError) as info:
        decode(vector["characteristic"], payload)
    error = info.value
    assert vector["expected"]["error"] in error.reason
    assert error.characteristic == vector["characteristic"]
    assert error.payload == payload
    assert vector["hex"] in str(error) and error.reason in str(error)


@pytest.mark.parametrize("vector", GOOD)
def test_encode_is_byte_exact(vector: dict[str, Any]) -> None:
    payload = bytes.fromhex(vector["hex"])
    obj = decode(vector["characteristic"], payload)
    assert bytes(obj) == payload  # type: ignore[call-overload]
    assert decode(vector["characteristic"], bytes(obj)) == obj  # type: ignore[call-overload]
