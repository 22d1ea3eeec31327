"""Weight Scale Service payload (SPEC.md 6.1): Weight Measurement 0x2A9D.

Fields stay as the raw integers of the wire (weight in 0.005 kg or 0.01 lb steps, BMI in 0.1 kg/m2,
height in 0.001 m or 0.1 in), so re-encoding is byte-exact; the scaled values are properties,
``weight_kg()`` / ``height_m()`` normalise imperial readings. Weight 0xFFFF means "Measurement
Unsuccessful" (WSS): ``weight`` is then None. RFU flag bits and trailing bytes are kept (SPEC 7).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, ClassVar, Self

from ._reader import Reader, pack_uint
from .date_time import DateTime
from .errors import EncodeError
from .jsonable import to_jsonable

#: Raw weight meaning "Measurement Unsuccessful".
WEIGHT_UNSUCCESSFUL = 0xFFFF
UNKNOWN_USER = 0xFF
#: 1 lb in kg and 1 in in m (exact, international yard and pound).
LB_TO_KG = Decimal("0.45359237")
IN_TO_M = Decimal("0.0254")

__all__ = [
    "IN_TO_M",
    "LB_TO_KG",
    "RESERVED_FLAGS_MASK",
    "UNKNOWN_USER",
    "WEIGHT_UNSUCCESSFUL",
    "WeightFlags",
    "WeightMeasurement",
    "WeightUnit",
]


class WeightUnit(enum.IntEnum):
    """Flags bit 0: SI (kg, m) or imperial (lb, in)."""

    SI = 0
    IMPERIAL = 1

    @property
    def label(self) -> str:
        return "imperial (lb, in)" if self is WeightUnit.IMPERIAL else "SI (kg, m)"

    @property
    def weight_unit(self) -> str:
        return "lb" if self is WeightUnit.IMPERIAL else "kg"

    @property
    def height_unit(self) -> str:
        return "in" if self is WeightUnit.IMPERIAL else "m"

    @property
    def weight_resolution(self) -> Decimal:
        return Decimal("0.01") if self is WeightUnit.IMPERIAL else Decimal("0.005")

    @property
    def height_resolution(self) -> Decimal:
        return Decimal("0.1") if self is WeightUnit.IMPERIAL else Decimal("0.001")


class WeightFlags(enum.IntFlag):
    """The flags octet of 0x2A9D; bits 4..7 are RFU (``RESERVED_FLAGS_MASK``)."""

    IMPERIAL = 0x01
    TIME_STAMP = 0x02
    USER_ID = 0x04
    BMI_AND_HEIGHT = 0x08


RESERVED_FLAGS_MASK = 0xF0
BMI_RESOLUTION = Decimal("0.1")


def _scaled(raw: int | None, resolution: Decimal) -> float | None:
    return None if raw is None else float(raw * resolution)


def _to_raw(value: float | Decimal, resolution: Decimal, field: str, limit: int) -> int:
    """``value`` in steps of ``resolution``, rounded half even; EncodeError outside 0..limit."""
    number = value if isinstance(value, Decimal) else Decimal(repr(value))
    if not number.is_finite():
        raise EncodeError(f"{field} {value!r} is not a finite number")
    raw = int((number / resolution).to_integral_value(rounding=ROUND_HALF_EVEN))
    if not 0 <= raw <= limit:
        raise EncodeError(f"{field} {value!r} outside 0..{limit * resolution}")
    return raw


@dataclass(frozen=True)
class WeightMeasurement:
    """0x2A9D. ``weight_raw`` 0xFFFF = unsuccessful; ``bmi_raw`` and ``height_raw`` go together."""

    unit: WeightUnit
    weight_raw: int
    time_stamp: DateTime | None = None
    user_id: int | None = None  # 255 = unknown user
    bmi_raw: int | None = None  # x 0.1 kg/m2
    height_raw: int | None = None  # x 0.001 m or x 0.1 in
    reserved_flags: int = 0  # RFU flag bits (mask 0xF0) as received
    trailing_bytes: bytes = b""  # bytes after the last field: ignored, kept for audit

    CHARACTERISTIC: ClassVar[str] = "2A9D"

    def __post_init__(self) -> None:
        bytes(self)  # validates every field: EncodeError when one cannot go on the wire

    @classmethod
    def from_values(
        cls,
        weight: float | Decimal | None,
        *,
        unit: WeightUnit = WeightUnit.SI,
        time_stamp: DateTime | datetime | None = None,
        user_id: int | None = None,
        bmi: float | Decimal | None = None,
        height: float | Decimal | None = None,
    ) -> Self:
        """Build from numbers in ``unit``, rounded to its resolution; weight None = unsuccessful."""
        if (bmi is None) != (height is None):
            raise EncodeError("bmi and height go together: give both or neither")
        limit = WEIGHT_UNSUCCESSFUL - 1
        return cls(
            unit,
            WEIGHT_UNSUCCESSFUL
            if weight is None
            else _to_raw(weight, unit.weight_resolution, "weight", limit),
            DateTime.coerce(time_stamp),
            user_id,
            None if bmi is None else _to_raw(bmi, BMI_RESOLUTION, "bmi", 0xFFFF),
            None if height is None else _to_raw(height, unit.height_resolution, "height", 0xFFFF),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        reader = Reader(cls.CHARACTERISTIC, data)
        flags = reader.uint(1, "Flags")
        weight_raw = reader.uint(2, "Weight")
        time_stamp = DateTime.read(reader) if flags & WeightFlags.TIME_STAMP else None
        user_id = reader.uint(1, "User ID") if flags & WeightFlags.USER_ID else None
        bmi_raw = height_raw = None
        if flags & WeightFlags.BMI_AND_HEIGHT:
            bmi_raw = reader.uint(2, "BMI")
            height_raw = reader.uint(2, "Height")
        return cls(
            WeightUnit(flags & WeightFlags.IMPERIAL),
            weight_raw,
            time_stamp,
            user_id,
            bmi_raw,
            height_raw,
            flags & RESERVED_FLAGS_MASK,
            reader.rest(),
        )

    @property
    def flags(self) -> WeightFlags:
        flags = WeightFlags(self.reserved_flags)
        if self.unit is WeightUnit.IMPERIAL:
            flags |= WeightFlags.IMPERIAL
        if self.time_stamp is not None:
            flags |= WeightFlags.TIME_STAMP
        if self.user_id is not None:
            flags |= WeightFlags.USER_ID
        if self.bmi_raw is not None:
            flags |= WeightFlags.BMI_AND_HEIGHT
        return flags

    def __bytes__(self) -> bytes:
        if self.reserved_flags & ~RESERVED_FLAGS_MASK:
            raise EncodeError(f"reserved_flags {self.reserved_flags:#x} outside mask 0xF0")
        if (self.bmi_raw is None) != (self.height_raw is None):
            raise EncodeError("bmi_raw and height_raw go together: give both or neither")
        parts = [bytes((int(self.flags),)), pack_uint(self.weight_raw, 2, "weight_raw")]
        if self.time_stamp is not None:
            parts.append(bytes(self.time_stamp))
        if self.user_id is not None:
            parts.append(pack_uint(self.user_id, 1, "user_id"))
        if self.bmi_raw is not None and self.height_raw is not None:
            parts.append(pack_uint(self.bmi_raw, 2, "bmi_raw"))
            parts.append(pack_uint(self.height_raw, 2, "height_raw"))
        return b"".join(parts) + self.trailing_bytes

    # -- meaning ------------------------------------------------------------------------------
    @property
    def successful(self) -> bool:
        return self.weight_raw != WEIGHT_UNSUCCESSFUL

    @property
    def weight(self) -> float | None:
        """In ``unit.weight_unit``; None for "Measurement Unsuccessful"."""
        return _scaled(self.weight_raw if self.successful else None, self.unit.weight_resolution)

    @property
    def bmi(self) -> float | None:
        """kg/m2 in either unit system."""
        return _scaled(self.bmi_raw, BMI_RESOLUTION)

    @property
    def height(self) -> float | None:
        """In ``unit.height_unit``."""
        return _scaled(self.height_raw, self.unit.height_resolution)

    def weight_kg(self) -> float | None:
        if not self.successful:
            return None
        kg = self.weight_raw * self.unit.weight_resolution
        return float(kg * LB_TO_KG if self.unit is WeightUnit.IMPERIAL else kg)

    def height_m(self) -> float | None:
        if self.height_raw is None:
            return None
        height = self.height_raw * self.unit.height_resolution
        return float(height * IN_TO_M if self.unit is WeightUnit.IMPERIAL else height)


@to_jsonable.register
def _(obj: WeightMeasurement) -> dict[str, Any]:
    out: dict[str, Any] = {"flags": f"0x{int(obj.flags):02X}", "units": obj.unit.label}
    if obj.reserved_flags:
        out["reserved_flag_bits_set"] = f"0x{obj.reserved_flags:02X}"
    out["weight_raw"] = obj.weight_raw
    out["weight"] = obj.weight
    if not obj.successful:
        out["weight_text"] = "Measurement Unsuccessful"
    out["weight_unit"] = obj.unit.weight_unit
    if obj.unit is WeightUnit.IMPERIAL and obj.successful:
        out["weight_kg"] = obj.weight_kg()
    if obj.time_stamp is not None:
        out["time_stamp"] = to_jsonable(obj.time_stamp)
    if obj.user_id is not None:
        out["user_id"] = obj.user_id
        if obj.user_id == UNKNOWN_USER:
            out["user_id_text"] = "unknown user"
    if obj.bmi_raw is not None:
        out["bmi"] = obj.bmi
        out["height"] = obj.height
        out["height_unit"] = obj.unit.height_unit
        if obj.unit is WeightUnit.IMPERIAL:
            out["height_m"] = obj.height_m()
    if obj.trailing_bytes:
        out["trailing_bytes"] = obj.trailing_bytes.hex()
    return out
