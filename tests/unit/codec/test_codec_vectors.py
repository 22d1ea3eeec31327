"""Every shared BLE test vector for the characteristics the codec supports, field by field."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gateway.codec import (
    BloodPressureFeature,
    BloodPressureMeasurement,
    CurrentTime,
    DateTime,
    GlucoseFeature,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    GlucoseUnit,
    IntermediateCuffPressure,
    MeasurementStatus,
    MedFloat,
    RacpRecordCount,
    RacpRequest,
    RacpResponse,
    SensorStatus,
    decode,
)
from tests.unit.codec.shared_vectors import load_vectors, split, vectors_path

SUPPORTED = (
    "SFLOAT",
    "FLOAT",
    "2A08",
    "2A2B",
    "2A35",
    "2A36",
    "2A49",
    "2A18",
    "2A34",
    "2A51",
    "2A52",
)
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
    "2A18": 11,
    "2A34": 6,
    "2A51": 2,
    "2A52": 22,
}


VECTORS, LOAD_ERROR = load_vectors(SUPPORTED)
GOOD, BAD = split(VECTORS)


def test_vectors_are_loaded_and_all_exercised() -> None:
    assert LOAD_ERROR is None, LOAD_ERROR
    assert dict(Counter(v["characteristic"] for v in VECTORS)) == EXPECTED_COUNTS
    assert len(GOOD) + len(BAD) == sum(EXPECTED_COUNTS.values()) == 84
    assert len(BAD) == 11


def test_missing_vectors_file_is_reported_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOMEWATCH_SHARED_DIR", str(tmp_path))
    assert vectors_path() == tmp_path / "ble" / "vectors.json"
    vectors, error = load_vectors(SUPPORTED)
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


def check_sensor_status(obj: SensorStatus, exp: dict[str, Any]) -> None:
    assert f"0x{obj.raw:04X}" == exp["raw"]
    assert list(obj.set_names) == exp["set"]
    assert bool(obj.reserved_bits) == exp["reserved_bits_set"]


def check_glucose(obj: GlucoseMeasurement, exp: dict[str, Any]) -> set[str]:
    assert f"0x{int(obj.flags):02X}" == exp["flags"]
    assert obj.reserved_flags == int(exp.get("reserved_flag_bits_set", "0x00"), 16)
    assert obj.sequence_number == exp["sequence_number"]
    check_date_time(obj.base_time, exp["base_time"])
    assert obj.time_offset == exp.get("time_offset_min")
    if "user_facing_time" in exp:
        device_time = obj.measured_at_device()
        assert device_time is not None and device_time.isoformat() == exp["user_facing_time"]
    assert (obj.concentration is None) == ("concentration" not in exp)
    if obj.concentration is not None:
        check_medfloat(obj.concentration, exp["concentration"])
        assert obj.unit.label == exp["concentration_unit"]
        assert obj.sample_type is not None and obj.sample_location is not None
        assert (int(obj.sample_type), obj.sample_type.text) == (exp["type"], exp["type_text"])
        assert (int(obj.sample_location), obj.sample_location.text) == (
            exp["sample_location"],
            exp["sample_location_text"],
        )
    mg_dl, mmol_l = obj.concentration_mg_per_dl(), obj.concentration_mmol_per_l()
    if "concentration_mg_dL_approx" in exp:
        assert mg_dl is not None and round(mg_dl, 1) == exp["concentration_mg_dL_approx"]
    else:
        assert mg_dl == exp.get("concentration_mg_dL")
    if "concentration_mmol_L_approx" in exp:
        assert mmol_l is not None and round(mmol_l, 2) == exp["concentration_mmol_L_approx"]
    else:
        assert mmol_l == exp.get("concentration_mmol_L")
    # units bit kept without a concentration (2A18-13): meaningless, but re-encoded as sent
    assert ("note" in exp) == (obj.concentration is None and obj.unit is GlucoseUnit.MOL_PER_L)
    assert (obj.sensor_status is None) == ("sensor_status_annunciation" not in exp)
    if obj.sensor_status is not None:
        check_sensor_status(obj.sensor_status, exp["sensor_status_annunciation"])
    assert obj.context_follows == exp["context_information_follows"]
    assert obj.trailing_bytes == b""
    return {
        "flags",
        "reserved_flag_bits_set",
        "sequence_number",
        "base_time",
        "time_offset_min",
        "user_facing_time",
        "concentration",
        "concentration_unit",
        "concentration_mg_dL",
        "concentration_mg_dL_approx",
        "concentration_mmol_L",
        "concentration_mmol_L_approx",
        "type",
        "type_text",
        "sample_location",
        "sample_location_text",
        "note",
        "sensor_status_annunciation",
        "context_information_follows",
    }


def check_glucose_context(obj: GlucoseMeasurementContext, exp: dict[str, Any]) -> set[str]:
    assert f"0x{int(obj.flags):02X}" == exp["flags"]
    assert obj.sequence_number == exp["sequence_number"]
    extended = None if obj.extended_flags is None else f"0x{obj.extended_flags:02X}"
    assert extended == exp.get("extended_flags")
    assert (obj.carbohydrate is None) == ("carbohydrate" not in exp)
    if obj.carbohydrate is not None:
        carbohydrate = obj.carbohydrate
        assert (int(carbohydrate.id), carbohydrate.id.text) == (
            exp["carbohydrate_id"],
            exp["carbohydrate_id_text"],
        )
        check_medfloat(carbohydrate.kilograms, exp["carbohydrate"])
        assert exp["carbohydrate_unit"] == "kg"
    meal = None if obj.meal is None else (int(obj.meal), obj.meal.text)
    assert meal == (None if "meal" not in exp else (exp["meal"], exp["meal_text"]))
    assert (obj.tester_health is None) == ("tester" not in exp)
    if obj.tester_health is not None:
        tester, health = obj.tester_health.tester, obj.tester_health.health
        assert (int(tester), tester.text) == (exp["tester"], exp["tester_text"])
        assert (int(health), health.text) == (exp["health"], exp["health_text"])
    assert (obj.exercise is None) == ("exercise_duration_s" not in exp)
    if obj.exercise is not None:
        assert obj.exercise.duration_s == exp["exercise_duration_s"]
        assert obj.exercise.overrun == (exp.get("exercise_duration_text") == "overrun")
        assert obj.exercise.intensity_pct == exp["exercise_intensity_pct"]
    assert (obj.medication is None) == ("medication" not in exp)
    if obj.medication is not None:
        medication = obj.medication
        assert (int(medication.id), medication.id.text) == (
            exp["medication_id"],
            exp["medication_id_text"],
        )
        check_medfloat(medication.amount, exp["medication"])
        assert obj.medication_unit.label == exp["medication_unit"]
    assert (obj.hba1c_pct is None) == ("hba1c_pct" not in exp)
    if obj.hba1c_pct is not None:
        check_medfloat(obj.hba1c_pct, exp["hba1c_pct"])
    assert len(obj.trailing_bytes) == exp.get("trailing_bytes", 0)
    return {
        "flags",
        "sequence_number",
        "extended_flags",
        "carbohydrate_id",
        "carbohydrate_id_text",
        "carbohydrate",
        "carbohydrate_unit",
        "meal",
        "meal_text",
        "tester",
        "tester_text",
        "health",
        "health_text",
        "exercise_duration_s",
        "exercise_duration_text",
        "exercise_intensity_pct",
        "medication_id",
        "medication_id_text",
        "medication",
        "medication_unit",
        "hba1c_pct",
        "trailing_bytes",
    }


def check_racp(obj: object, exp: dict[str, Any]) -> set[str]:
    assert isinstance(obj, RacpRequest | RacpRecordCount | RacpResponse)
    assert (int(obj.op_code), obj.op_code.text) == (exp["op_code"], exp["op_code_text"])
    assert (int(obj.operator), obj.operator.text) == (exp["operator"], exp["operator_text"])
    keys = {"op_code", "op_code_text", "operator", "operator_text"}
    if isinstance(obj, RacpRecordCount):
        assert obj.number_of_records == exp["number_of_records"]
        return keys | {"number_of_records"}
    if isinstance(obj, RacpResponse):
        request, response = obj.request_op_code, obj.response_code
        assert (int(request), request.text) == (exp["request_op_code"], exp["request_op_code_text"])
        assert (int(response), response.text) == (exp["response_code"], exp["response_code_text"])
        return keys | {
            "request_op_code",
            "request_op_code_text",
            "response_code",
            "response_code_text",
        }
    assert obj.operand_bytes == b""
    assert (obj.filter is None) == ("filter_type" not in exp)
    if obj.filter is not None:
        filter_type = obj.filter.filter_type
        assert (int(filter_type), filter_type.text) == (exp["filter_type"], exp["filter_type_text"])
        operand = exp["operand"]
        expected = operand if isinstance(operand, list) else [operand]
        assert len(obj.filter.values) == len(expected)
        for value, wanted in zip(obj.filter.values, expected, strict=True):
            if isinstance(value, DateTime):
                check_date_time(value, wanted)
            else:
                assert value == wanted
    return keys | {"filter_type", "filter_type_text", "operand"}


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
    if characteristic == "2A18":
        assert isinstance(obj, GlucoseMeasurement)
        return check_glucose(obj, exp)
    if characteristic == "2A34":
        assert isinstance(obj, GlucoseMeasurementContext)
        return check_glucose_context(obj, exp)
    if characteristic == "2A51":
        assert isinstance(obj, GlucoseFeature)
        assert f"0x{int(obj.features):04X}" == exp["raw"]
        assert list(obj.supported) == exp["supported"]
        return {"raw", "supported"}
    if characteristic == "2A52":
        return check_racp(obj, exp)
    assert characteristic == "2A49" and isinstance(obj, BloodPressureFeature)
    assert f"0x{int(obj.features):04X}" == exp["raw"]
    assert list(obj.supported) == exp["supported"]
    return {"raw", "supported"}


@pytest.mark.parametrize("vector", GOOD)
def test_decode_matches_expected(vector: dict[str, Any]) -> None:
    obj = decode(vector["characteristic"], bytes.fromhex(vector["hex"]))
    checked = check(vector["characteristic"], obj, vector["expected"])
    assert set(vector["expected"]) <= checked, "expected keys this test does not check"
