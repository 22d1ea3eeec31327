"""The byte layout 0x2A35 and 0x2A36 share (SPEC.md 3.1): flags, three SFLOAT pressure slots,
then optional Time Stamp, Pulse Rate, User ID and Measurement Status, in that order."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Self

from ._reader import Reader, pack_uint
from .date_time import DateTime
from .errors import EncodeError
from .ieee11073 import SFloat


class PressureUnit(enum.IntEnum):
    MMHG = 0
    KPA = 1

    @property
    def label(self) -> str:
        return "kPa" if self is PressureUnit.KPA else "mmHg"


class BloodPressureFlags(enum.IntFlag):
    """The flags octet of 0x2A35/0x2A36; bits 5..7 are RFU (``RESERVED_FLAGS_MASK``)."""

    UNITS_KPA = 0x01
    TIME_STAMP = 0x02
    PULSE_RATE = 0x04
    USER_ID = 0x08
    MEASUREMENT_STATUS = 0x10


RESERVED_FLAGS_MASK = 0xE0


class PulseRateRange(enum.IntEnum):
    """Measurement Status bits 3..4."""

    WITHIN = 0
    ABOVE = 1
    BELOW = 2
    RESERVED = 3

    @property
    def text(self) -> str:
        return ("within range", "exceeds upper limit", "less than lower limit", "RFU")[self]


@dataclass(frozen=True)
class MeasurementStatus:
    """Measurement Status (uint16). ``reserved_bits`` holds RFU bits 6..15 in place."""

    body_movement: bool = False
    cuff_too_loose: bool = False
    irregular_pulse: bool = False
    pulse_rate_range: PulseRateRange = PulseRateRange.WITHIN
    improper_position: bool = False
    reserved_bits: int = 0

    RESERVED_MASK: ClassVar[int] = 0xFFC0

    def __post_init__(self) -> None:
        if self.reserved_bits & ~self.RESERVED_MASK:
            raise EncodeError(f"reserved_bits {self.reserved_bits:#x} outside mask 0xFFC0")

    @classmethod
    def from_int(cls, raw: int) -> Self:
        return cls(
            body_movement=bool(raw & 0x01),
            cuff_too_loose=bool(raw & 0x02),
            irregular_pulse=bool(raw & 0x04),
            pulse_rate_range=PulseRateRange((raw & 0x18) >> 3),
            improper_position=bool(raw & 0x20),
            reserved_bits=raw & cls.RESERVED_MASK,
        )

    @property
    def raw(self) -> int:
        return (
            self.body_movement * 0x01
            | self.cuff_too_loose * 0x02
            | self.irregular_pulse * 0x04
            | int(self.pulse_rate_range) << 3
            | self.improper_position * 0x20
            | self.reserved_bits
        )

    def __int__(self) -> int:
        return self.raw


@dataclass(frozen=True)
class BloodPressureLayout:
    """What 0x2A35 and 0x2A36 share after their three pressure slots."""

    unit: PressureUnit
    slots: tuple[SFloat, SFloat, SFloat]
    time_stamp: DateTime | None
    pulse_rate: SFloat | None
    user_id: int | None
    status: MeasurementStatus | None
    reserved_flags: int
    trailing_bytes: bytes

    @classmethod
    def decode(cls, characteristic: str, data: bytes, names: tuple[str, str, str]) -> Self:
        reader = Reader(characteristic, data)
        flags = reader.uint(1, "Flags")
        slots = (
            SFloat.read(reader, names[0]),
            SFloat.read(reader, names[1]),
            SFloat.read(reader, names[2]),
        )
        time_stamp = DateTime.read(reader) if flags & BloodPressureFlags.TIME_STAMP else None
        pulse = SFloat.read(reader, "Pulse Rate") if flags & BloodPressureFlags.PULSE_RATE else None
        user_id = reader.uint(1, "User ID") if flags & BloodPressureFlags.USER_ID else None
        status = None
        if flags & BloodPressureFlags.MEASUREMENT_STATUS:
            status = MeasurementStatus.from_int(reader.uint(2, "Measurement Status"))
        unit = PressureUnit(flags & BloodPressureFlags.UNITS_KPA)
        return cls(
            unit,
            slots,
            time_stamp,
            pulse,
            user_id,
            status,
            flags & RESERVED_FLAGS_MASK,
            reader.rest(),
        )

    def flags(self) -> BloodPressureFlags:
        flags = BloodPressureFlags(self.reserved_flags)
        if self.unit is PressureUnit.KPA:
            flags |= BloodPressureFlags.UNITS_KPA
        if self.time_stamp is not None:
            flags |= BloodPressureFlags.TIME_STAMP
        if self.pulse_rate is not None:
            flags |= BloodPressureFlags.PULSE_RATE
        if self.user_id is not None:
            flags |= BloodPressureFlags.USER_ID
        if self.status is not None:
            flags |= BloodPressureFlags.MEASUREMENT_STATUS
        return flags

    def encode(self) -> bytes:
        if self.reserved_flags & ~RESERVED_FLAGS_MASK:
            raise EncodeError(f"reserved_flags {self.reserved_flags:#x} outside mask 0xE0")
        parts = [bytes((int(self.flags()),)), *(bytes(slot) for slot in self.slots)]
        if self.time_stamp is not None:
            parts.append(bytes(self.time_stamp))
        if self.pulse_rate is not None:
            parts.append(bytes(self.pulse_rate))
        if self.user_id is not None:
            parts.append(pack_uint(self.user_id, 1, "user_id"))
        if self.status is not None:
            parts.append(self.status.raw.to_bytes(2, "little"))
        return b"".join(parts) + self.trailing_bytes
