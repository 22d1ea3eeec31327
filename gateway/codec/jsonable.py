"""Decoded objects as plain JSON-ready dicts, in the shape of shared/ble/vectors.json ``expected``.

Optional keys (``special``, ``unknown_fields``, ``reserved_flag_bits_set``, ``trailing_bytes``...)
appear only when they carry something.
"""

from __future__ import annotations

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
from .ieee11073 import MedFloat


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
