"""Decoded objects as plain JSON-ready dicts, in the shape of shared/ble/vectors.json ``expected``.

Optional keys (``special``, ``unknown_fields``, ``reserved_flag_bits_set``, ``trailing_bytes``...)
appear only when they carry something.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from functools import singledispatch
from typing import Any

from .blood_pressure import (
    BloodPressureFeature,
    BloodPressureMeasurement,
    IntermediateCuffPressure,
    MeasurementStatus,
    PressureUnit,
)
from .bp_layout import BloodPressureLayout
from .date_time import CurrentTime, DateTime
from .glucose import GlucoseFeature, GlucoseMeasurement, GlucoseUnit, SensorStatus
from .glucose_context import GlucoseMeasurementContext
from .ieee11073 import MedFloat
from .racp import RacpRecordCount, RacpRequest, RacpResponse


@singledispatch
def to_jsonable(obj: object) -> Any:
    """A decoded codec object as dicts/lists/str/int/float/bool/None."""
    raise TypeError(f"no JSON form for {type(obj).__name__}")


@to_jsonable.register
def _(obj: MedFloat) -> dict[str, Any]:
    out: dict[str, Any] = {
        "raw": f"0x{obj.raw:0{obj.SIZE * 2}X}",
        "mantissa": obj.mantissa,
        "exponent": obj.exponent,
    }
    if obj.special is not None:
        out["special"] = obj.special.value
    out["value"] = None if obj.special is not None else obj.value
    if obj.ambiguous_reserved_mantissa:
        out["ambiguous_reserved_mantissa"] = True
    return out


@to_jsonable.register
def _(obj: DateTime) -> dict[str, Any]:
    out: dict[str, Any] = {
        name: getattr(obj, name) for name in ("year", "month", "day", "hours", "minutes", "seconds")
    }
    if obj.unknown_fields:
        out["unknown_fields"] = list(obj.unknown_fields)
    dt = obj.to_datetime()
    out["iso"] = None if dt is None else dt.isoformat()
    return out


@to_jsonable.register
def _(obj: CurrentTime) -> dict[str, Any]:
    reason = obj.adjust_reason
    return {
        "date_time": to_jsonable(obj.date_time),
        "day_of_week": int(obj.day_of_week),
        "day_of_week_text": obj.day_of_week.text,
        "fractions256": obj.fractions256,
        "adjust_reason": {
            "raw": f"0x{int(reason):02X}",
            "manual_time_update": bool(reason & reason.MANUAL_TIME_UPDATE),
            "external_reference_time_update": bool(reason & reason.EXTERNAL_REFERENCE_TIME_UPDATE),
            "change_of_time_zone": bool(reason & reason.CHANGE_OF_TIME_ZONE),
            "change_of_dst": bool(reason & reason.CHANGE_OF_DST),
        },
    }


@to_jsonable.register
def _(obj: MeasurementStatus) -> dict[str, Any]:
    return {
        "raw": f"0x{obj.raw:04X}",
        "body_movement": obj.body_movement,
        "cuff_too_loose": obj.cuff_too_loose,
        "irregular_pulse": obj.irregular_pulse,
        "pulse_rate_range": int(obj.pulse_rate_range),
        "pulse_rate_range_text": obj.pulse_rate_range.text,
        "improper_measurement_position": obj.improper_position,
        "reserved_bits_set": bool(obj.reserved_bits),
    }


def _layout(obj: BloodPressureLayout, slot_keys: tuple[str, str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"flags": f"0x{int(obj.flags()):02X}", "unit": obj.unit.label}
    if obj.reserved_flags:
        out["reserved_flag_bits_set"] = f"0x{obj.reserved_flags:02X}"
    out.update({key: to_jsonable(slot) for key, slot in zip(slot_keys, obj.slots, strict=True)})
    if obj.time_stamp is not None:
        out["time_stamp"] = to_jsonable(obj.time_stamp)
    if obj.pulse_rate is not None:
        out["pulse_rate_bpm"] = to_jsonable(obj.pulse_rate)
    if obj.user_id is not None:
        out["user_id"] = obj.user_id
        if obj.user_id == 0xFF:
            out["user_id_text"] = "unknown user"
    if obj.status is not None:
        out["measurement_status"] = to_jsonable(obj.status)
    if obj.trailing_bytes:
        out["trailing_bytes"] = obj.trailing_bytes.hex()
    return out


@to_jsonable.register
def _(obj: BloodPressureMeasurement) -> dict[str, Any]:
    out = _layout(obj.layout(), ("systolic", "diastolic", "mean_arterial_pressure"))
    mmhg = obj.in_mmhg()
    if obj.unit is PressureUnit.KPA:
        out["in_mmhg"] = {
            "systolic": mmhg.systolic,
            "diastolic": mmhg.diastolic,
            "mean_arterial_pressure": mmhg.mean_arterial_pressure,
        }
    return out


@to_jsonable.register
def _(obj: IntermediateCuffPressure) -> dict[str, Any]:
    return _layout(obj.layout(), ("current_cuff_pressure", "diastolic_unused", "map_unused"))


@to_jsonable.register
def _(obj: BloodPressureFeature) -> dict[str, Any]:
    out: dict[str, Any] = {"raw": f"0x{int(obj.features):04X}", "supported": list(obj.supported)}
    if obj.reserved_bits:
        out["reserved_bits_set"] = f"0x{obj.reserved_bits:04X}"
    return out


# -- Glucose Service (SPEC 4) and RACP (SPEC 5) ---------------------------------------------------
def _rounded(value: Decimal, places: str) -> float:
    return float(value.quantize(Decimal(places), rounding=ROUND_HALF_EVEN))


@to_jsonable.register
def _(obj: SensorStatus) -> dict[str, Any]:
    return {
        "raw": f"0x{obj.raw:04X}",
        "set": list(obj.set_names),
        "reserved_bits_set": bool(obj.reserved_bits),
    }


UNITS_WITHOUT_CONCENTRATION = (
    "units bit set but concentration not present (bit1=0): units bit is meaningless"
)


@to_jsonable.register
def _(obj: GlucoseMeasurement) -> dict[str, Any]:
    """Exact conversions are plain keys; those through 18.016 mg/dL per mmol/L end in ``_approx``
    (mmol/L to 2 decimals, mg/dL to 1)."""
    out: dict[str, Any] = {"flags": f"0x{int(obj.flags):02X}"}
    if obj.reserved_flags:
        out["reserved_flag_bits_set"] = f"0x{obj.reserved_flags:02X}"
    out["sequence_number"] = obj.sequence_number
    out["base_time"] = to_jsonable(obj.base_time)
    if obj.time_offset is not None:
        out["time_offset_min"] = obj.time_offset
    device_time = obj.measured_at_device()
    out["user_facing_time"] = None if device_time is None else device_time.isoformat()
    if obj.concentration is not None:
        assert obj.sample_type is not None and obj.sample_location is not None
        out["concentration"] = to_jsonable(obj.concentration)
        out["concentration_unit"] = obj.unit.label
        mg_dl = obj.concentration_mg_per_dl_exact()
        mmol_l = obj.concentration_mmol_per_l_exact()
        if mg_dl is not None and mmol_l is not None:
            if obj.unit is GlucoseUnit.KG_PER_L:
                out["concentration_mg_dL"] = float(mg_dl)
                out["concentration_mmol_L_approx"] = _rounded(mmol_l, "0.01")
            else:
                out["concentration_mmol_L"] = float(mmol_l)
                out["concentration_mg_dL_approx"] = _rounded(mg_dl, "0.1")
        out["type"] = int(obj.sample_type)
        out["type_text"] = obj.sample_type.text
        out["sample_location"] = int(obj.sample_location)
        out["sample_location_text"] = obj.sample_location.text
    elif obj.unit is GlucoseUnit.MOL_PER_L:
        out["note"] = UNITS_WITHOUT_CONCENTRATION
    if obj.sensor_status is not None:
        out["sensor_status_annunciation"] = to_jsonable(obj.sensor_status)
    out["context_information_follows"] = obj.context_follows
    if obj.trailing_bytes:
        out["trailing_bytes"] = obj.trailing_bytes.hex()
    return out


@to_jsonable.register
def _(obj: GlucoseMeasurementContext) -> dict[str, Any]:
    """``trailing_bytes`` is a count here, as in the vectors (2A34-02), with the bytes beside it."""
    out: dict[str, Any] = {
        "flags": f"0x{int(obj.flags):02X}",
        "sequence_number": obj.sequence_number,
    }
    if obj.extended_flags is not None:
        out["extended_flags"] = f"0x{obj.extended_flags:02X}"
    if obj.carbohydrate is not None:
        out["carbohydrate_id"] = int(obj.carbohydrate.id)
        out["carbohydrate_id_text"] = obj.carbohydrate.id.text
        out["carbohydrate"] = to_jsonable(obj.carbohydrate.kilograms)
        out["carbohydrate_unit"] = "kg"
    if obj.meal is not None:
        out["meal"] = int(obj.meal)
        out["meal_text"] = obj.meal.text
    if obj.tester_health is not None:
        tester, health = obj.tester_health.tester, obj.tester_health.health
        out.update(
            tester=int(tester), tester_text=tester.text, health=int(health), health_text=health.text
        )
    if obj.exercise is not None:
        out["exercise_duration_s"] = obj.exercise.duration_s
        if obj.exercise.overrun:
            out["exercise_duration_text"] = "overrun"
        out["exercise_intensity_pct"] = obj.exercise.intensity_pct
    if obj.medication is not None:
        out["medication_id"] = int(obj.medication.id)
        out["medication_id_text"] = obj.medication.id.text
        out["medication"] = to_jsonable(obj.medication.amount)
        out["medication_unit"] = obj.medication_unit.label
    if obj.hba1c_pct is not None:
        out["hba1c_pct"] = to_jsonable(obj.hba1c_pct)
    if obj.trailing_bytes:
        out["trailing_bytes"] = len(obj.trailing_bytes)
        out["trailing_bytes_hex"] = obj.trailing_bytes.hex()
    return out


@to_jsonable.register
def _(obj: GlucoseFeature) -> dict[str, Any]:
    out: dict[str, Any] = {"raw": f"0x{int(obj.features):04X}", "supported": list(obj.supported)}
    if obj.reserved_bits:
        out["reserved_bits_set"] = f"0x{obj.reserved_bits:04X}"
    return out


def _racp_head(op_code: Any, operator: Any) -> dict[str, Any]:
    return {
        "op_code": int(op_code),
        "op_code_text": op_code.text,
        "operator": int(operator),
        "operator_text": operator.text,
    }


@to_jsonable.register
def _(obj: RacpRequest) -> dict[str, Any]:
    out = _racp_head(obj.op_code, obj.operator)
    if obj.filter is not None:
        out["filter_type"] = int(obj.filter.filter_type)
        out["filter_type_text"] = obj.filter.filter_type.text
        values = [v if isinstance(v, int) else to_jsonable(v) for v in obj.filter.values]
        if len(values) == 1:
            out["operand"] = values[0]
        elif values:
            out["operand"] = values
    if obj.operand_bytes:
        out["operand_bytes"] = obj.operand_bytes.hex()
    return out


@to_jsonable.register
def _(obj: RacpRecordCount) -> dict[str, Any]:
    return {**_racp_head(obj.op_code, obj.operator), "number_of_records": obj.number_of_records}


@to_jsonable.register
def _(obj: RacpResponse) -> dict[str, Any]:
    return {
        **_racp_head(obj.op_code, obj.operator),
        "request_op_code": int(obj.request_op_code),
        "request_op_code_text": obj.request_op_code.text,
        "response_code": int(obj.response_code),
        "response_code_text": obj.response_code.text,
    }
