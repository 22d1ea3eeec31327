"""GATT codecs: pure decode/encode of the characteristic values homewatch reads (SPEC.md 1-5).

``decode(characteristic, data)`` is the one entry point by name; the payload classes
(``BloodPressureMeasurement.from_bytes`` / ``bytes(obj)``) are the typed one. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable

from .blood_pressure import (
    KPA_TO_MMHG,
    UNKNOWN_USER,
    BloodPressureFeature,
    BloodPressureFeatureFlag,
    BloodPressureFlags,
    BloodPressureMeasurement,
    BloodPressureMmHg,
    IntermediateCuffPressure,
    MeasurementStatus,
    PressureUnit,
    PulseRateRange,
)
from .date_time import AdjustReason, CurrentTime, DateTime, DayOfWeek
from .errors import CodecError, DecodeError, EncodeError
from .glucose import (
    KG_PER_L_TO_MG_PER_DL,
    MMOL_PER_L_TO_MG_PER_DL,
    MOL_PER_L_TO_MMOL_PER_L,
    GlucoseFeature,
    GlucoseFeatureFlag,
    GlucoseFlags,
    GlucoseMeasurement,
    GlucoseType,
    GlucoseUnit,
    SampleLocation,
    SensorStatus,
    SensorStatusFlag,
)
from .glucose_context import (
    Carbohydrate,
    CarbohydrateId,
    ContextFlags,
    Exercise,
    GlucoseMeasurementContext,
    Health,
    Meal,
    Medication,
    MedicationId,
    MedicationUnit,
    SampleTester,
    SampleTesterHealth,
)
from .ieee11073 import (
    Float32,
    MedFloat,
    SFloat,
    SpecialValue,
    decode_float,
    decode_sfloat,
    encode_float,
    encode_sfloat,
)
from .jsonable import to_jsonable
from .pulse_oximeter import PlxSpotCheckMeasurement
from .racp import (
    RacpFilterType,
    RacpMessage,
    RacpOpCode,
    RacpOperator,
    RacpRecordCount,
    RacpRequest,
    RacpResponse,
    RacpResponseValue,
    RecordFilter,
    decode_racp,
)
from .thermometer import TemperatureMeasurement
from .uuids import parse_uuid16, uuid128
from .weight_scale import WeightMeasurement

#: Registry key -> decoder. Keys are what ``DecodeError.characteristic`` carries.
DECODERS: dict[str, Callable[[bytes], object]] = {
    "SFLOAT": SFloat.from_bytes,
    "FLOAT": Float32.from_bytes,
    "2A08": DateTime.from_bytes,
    "2A2B": CurrentTime.from_bytes,
    "2A35": BloodPressureMeasurement.from_bytes,
    "2A36": IntermediateCuffPressure.from_bytes,
    "2A49": BloodPressureFeature.from_bytes,
    "2A18": GlucoseMeasurement.from_bytes,
    "2A34": GlucoseMeasurementContext.from_bytes,
    "2A51": GlucoseFeature.from_bytes,
    "2A52": decode_racp,
    "2A1C": TemperatureMeasurement.from_bytes,
    "2A5E": PlxSpotCheckMeasurement.from_bytes,
    "2A9D": WeightMeasurement.from_bytes,
}


def characteristic_key(characteristic: str) -> str | None:
    """Registry key for "2A35", "0x2a35", a 128-bit SIG UUID, "SFLOAT" or "FLOAT"; else None."""
    name = characteristic.strip().upper()
    if name in ("SFLOAT", "FLOAT"):
        return name
    uuid16 = parse_uuid16(characteristic)
    key = None if uuid16 is None else f"{uuid16:04X}"
    return key if key in DECODERS else None


def decode(characteristic: str, data: bytes) -> object:
    """Decode ``data`` as ``characteristic``; DecodeError for bad data or an unknown name."""
    key = characteristic_key(characteristic)
    if key is None:
        supported = ", ".join(DECODERS)
        raise DecodeError(
            characteristic, bytes(data), f"unsupported characteristic (supported: {supported})"
        )
    return DECODERS[key](bytes(data))


__all__ = [
    "DECODERS",
    "KG_PER_L_TO_MG_PER_DL",
    "KPA_TO_MMHG",
    "MMOL_PER_L_TO_MG_PER_DL",
    "MOL_PER_L_TO_MMOL_PER_L",
    "UNKNOWN_USER",
    "AdjustReason",
    "BloodPressureFeature",
    "BloodPressureFeatureFlag",
    "BloodPressureFlags",
    "BloodPressureMeasurement",
    "BloodPressureMmHg",
    "Carbohydrate",
    "CarbohydrateId",
    "CodecError",
    "ContextFlags",
    "CurrentTime",
    "DateTime",
    "DayOfWeek",
    "DecodeError",
    "EncodeError",
    "Exercise",
    "Float32",
    "GlucoseFeature",
    "GlucoseFeatureFlag",
    "GlucoseFlags",
    "GlucoseMeasurement",
    "GlucoseMeasurementContext",
    "GlucoseType",
    "GlucoseUnit",
    "Health",
    "IntermediateCuffPressure",
    "Meal",
    "MeasurementStatus",
    "MedFloat",
    "Medication",
    "MedicationId",
    "MedicationUnit",
    "PlxSpotCheckMeasurement",
    "PressureUnit",
    "PulseRateRange",
    "RacpFilterType",
    "RacpMessage",
    "RacpOpCode",
    "RacpOperator",
    "RacpRecordCount",
    "RacpRequest",
    "RacpResponse",
    "RacpResponseValue",
    "RecordFilter",
    "SFloat",
    "SampleLocation",
    "SampleTester",
    "SampleTesterHealth",
    "SensorStatus",
    "SensorStatusFlag",
    "SpecialValue",
    "TemperatureMeasurement",
    "WeightMeasurement",
    "characteristic_key",
    "decode",
    "decode_float",
    "decode_racp",
    "decode_sfloat",
    "encode_float",
    "encode_sfloat",
    "parse_uuid16",
    "to_jsonable",
    "uuid128",
]
