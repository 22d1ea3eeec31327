"""Health Thermometer Service payload (SPEC.md 6.3): Temperature Measurement 0x2A1C.

The temperature is a 32-bit FLOAT kept as sent, in the unit of flags bit 0; ``celsius()``
normalises. Temperature Type values 0 and 10..255 (RFU) are kept as pseudo-members. RFU flag bits
and trailing bytes are kept (SPEC 7).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Self

from ._reader import Reader, pack_uint
from .date_time import DateTime
from .errors import EncodeError
from .ieee11073 import Float32
from .jsonable import to_jsonable
from .open_enum import Code8

__all__ = [
    "RESERVED_FLAGS_MASK",
    "TemperatureFlags",
    "TemperatureMeasurement",
    "TemperatureType",
    "TemperatureUnit",
]


class TemperatureUnit(enum.IntEnum):
    CELSIUS = 0
    FAHRENHEIT = 1

    @property
    def label(self) -> str:
        return "°F" if self is TemperatureUnit.FAHRENHEIT else "°C"


class TemperatureFlags(enum.IntFlag):
    """The flags octet of 0x2A1C; bits 3..7 are RFU (``RESERVED_FLAGS_MASK``)."""

    FAHRENHEIT = 0x01
    TIME_STAMP = 0x02
    TEMPERATURE_TYPE = 0x04


RESERVED_FLAGS_MASK = 0xF8

#: SPEC 6.3 names (XML temperature_type.xml).
_TYPE_TEXT = {
    1: "Armpit",
    2: "Body (general)",
    3: "Ear",
    4: "Finger",
    5: "GI tract",
    6: "Mouth",
    7: "Rectum",
    8: "Toe",
    9: "Tympanum",
}


class TemperatureType(Code8):
    """Where the temperature was taken; 0 and 10..255 (RFU) are kept as pseudo-members."""

    ARMPIT = 1
    BODY = 2
    EAR = 3
    FINGER = 4
    GASTROINTESTINAL_TRACT = 5
    MOUTH = 6
    RECTUM = 7
    TOE = 8
    TYMPANUM = 9

    @property
    def text(self) -> str:
        return _TYPE_TEXT.get(self.value, self.name)


@dataclass(frozen=True)
class TemperatureMeasurement:
    """0x2A1C. ``temperature`` in ``unit``; ``celsius()`` converts."""

    unit: TemperatureUnit
    temperature: Float32
    time_stamp: DateTime | None = None
    temperature_type: TemperatureType | None = None
    reserved_flags: int = 0  # RFU flag bits (mask 0xF8) as received
    trailing_bytes: bytes = b""  # bytes after the last field: ignored, kept for audit

    CHARACTERISTIC: ClassVar[str] = "2A1C"

    def __post_init__(self) -> None:
        bytes(self)  # validates every field: EncodeError when one cannot go on the wire

    @classmethod
    def from_values(
        cls,
        temperature: Float32 | float,
        *,
        unit: TemperatureUnit = TemperatureUnit.CELSIUS,
        time_stamp: DateTime | datetime | None = None,
        temperature_type: TemperatureType | None = None,
    ) -> Self:
        """Build from a plain number (NaN allowed), e.g. in a simulator."""
        return cls(
            unit,
            Float32.coerce(temperature),
            DateTime.coerce(time_stamp),
            temperature_type,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        reader = Reader(cls.CHARACTERISTIC, data)
        flags = reader.uint(1, "Flags")
        temperature = Float32.read(reader, "Temperature")
        time_stamp = DateTime.read(reader) if flags & TemperatureFlags.TIME_STAMP else None
        kind = None
        if flags & TemperatureFlags.TEMPERATURE_TYPE:
            kind = TemperatureType(reader.uint(1, "Temperature Type"))
        return cls(
            TemperatureUnit(flags & TemperatureFlags.FAHRENHEIT),
            temperature,
            time_stamp,
            kind,
            flags & RESERVED_FLAGS_MASK,
            reader.rest(),
        )

    @property
    def flags(self) -> TemperatureFlags:
        flags = TemperatureFlags(self.reserved_flags)
        if self.unit is TemperatureUnit.FAHRENHEIT:
            flags |= TemperatureFlags.FAHRENHEIT
        if self.time_stamp is not None:
            flags |= TemperatureFlags.TIME_STAMP
        if self.temperature_type is not None:
            flags |= TemperatureFlags.TEMPERATURE_TYPE
        return flags

    def __bytes__(self) -> bytes:
        if self.reserved_flags & ~RESERVED_FLAGS_MASK:
            raise EncodeError(f"reserved_flags {self.reserved_flags:#x} outside mask 0xF8")
        parts = [bytes((int(self.flags),)), bytes(self.temperature)]
        if self.time_stamp is not None:
            parts.append(bytes(self.time_stamp))
        if self.temperature_type is not None:
            parts.append(pack_uint(int(self.temperature_type), 1, "temperature_type"))
        return b"".join(parts) + self.trailing_bytes

    def celsius(self) -> float | None:
        """The temperature in °C; None for a special value (NaN, NRes, +/-INF, RFU)."""
        number = self.temperature.decimal
        if number is None:
            return None
        if self.unit is TemperatureUnit.FAHRENHEIT:
            number = (number - 32) * 5 / Decimal(9)
        return float(number)


@to_jsonable.register
def _(obj: TemperatureMeasurement) -> dict[str, Any]:
    out: dict[str, Any] = {"flags": f"0x{int(obj.flags):02X}"}
    if obj.reserved_flags:
        out["reserved_flag_bits_set"] = f"0x{obj.reserved_flags:02X}"
    out["temperature"] = to_jsonable(obj.temperature)
    out["unit"] = obj.unit.label
    if obj.unit is TemperatureUnit.FAHRENHEIT:
        out["celsius"] = obj.celsius()
    if obj.time_stamp is not None:
        out["time_stamp"] = to_jsonable(obj.time_stamp)
    if obj.temperature_type is not None:
        out["temperature_type"] = int(obj.temperature_type)
        out["temperature_type_text"] = obj.temperature_type.text
    if obj.trailing_bytes:
        out["trailing_bytes"] = obj.trailing_bytes.hex()
    return out
