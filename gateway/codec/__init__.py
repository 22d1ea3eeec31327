"""GATT codecs: pure decode/encode of the characteristic values homewatch reads (SPEC.md 1-3).

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
from .uuids import parse_uuid16, uuid128

#: Registry key -> decoder. Keys are what ``DecodeError.characteristic`` carries.
DECODERS: dict[str, Callable[[bytes], object]] = {
    "SFLOAT": SFloat.from_bytes,
    "FLOAT": Float32.from_bytes,
    "2A08": DateTime.from_bytes,
    "2A2B": CurrentTime.from_bytes,
    "2A35": BloodPressureMeasurement.from_bytes,
    "2A36": IntermediateCuffPressure.from_bytes,
    "2A49": BloodPressureFeature.from_bytes,
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
    "KPA_TO_MMHG",
    "UNKNOWN_USER",
    "AdjustReason",
    "BloodPressureFeature",
    "BloodPressureFeatureFlag",
    "BloodPressureFlags",
    "BloodPressureMeasurement",
    "BloodPressureMmHg",
    "CodecError",
    "CurrentTime",
    "DateTime",
    "DayOfWeek",
    "DecodeError",
    "EncodeError",
    "Float32",
    "IntermediateCuffPressure",
    "MeasurementStatus",
    "MedFloat",
    "PressureUnit",
    "PulseRateRange",
    "SFloat",
    "SpecialValue",
    "characteristic_key",
    "decode",
    "decode_float",
    "decode_sfloat",
    "encode_float",
    "encode_sfloat",
    "parse_uuid16",
    "to_jsonable",
    "uuid128",
]
