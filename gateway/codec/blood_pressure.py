"""Blood Pressure Service payloads (SPEC.md 3): Measurement 0x2A35, Intermediate Cuff Pressure
0x2A36 (same layout) and Feature 0x2A49.

Decoded objects keep everything needed to re-encode the value byte for byte: the SFLOATs' own
mantissa/exponent, RFU flag bits (``reserved_flags``), the unused ICP slots and trailing bytes
(ignored for meaning, SPEC 7). Pressures stay in the unit the device sent; ``in_mmhg()`` converts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Self

from ._reader import pack_uint, require_length
from .bp_layout import (
    RESERVED_FLAGS_MASK,
    BloodPressureFlags,
    BloodPressureLayout,
    MeasurementStatus,
    PressureUnit,
    PulseRateRange,
)
from .date_time import DateTime
from .ieee11073 import SFloat

#: 1 kPa in mmHg (the conversion the project uses everywhere).
KPA_TO_MMHG = Decimal("7.500617")
UNKNOWN_USER = 0xFF

__all__ = [
    "KPA_TO_MMHG",
    "RESERVED_FLAGS_MASK",
    "UNKNOWN_USER",
    "BloodPressureFeature",
    "BloodPressureFeatureFlag",
    "BloodPressureFlags",
    "BloodPressureLayout",
    "BloodPressureMeasurement",
    "BloodPressureMmHg",
    "IntermediateCuffPressure",
    "MeasurementStatus",
    "PressureUnit",
    "PulseRateRange",
]


def _finite(value: SFloat | None) -> float | None:
    """The number; None when absent or a special value (NaN, NRes, +/-INF, RFU)."""
    number = None if value is None else value.decimal
    return None if number is None else float(number)


def _to_mmhg(value: SFloat, unit: PressureUnit) -> float | None:
    """A pressure in mmHg; None for any special value."""
    number = value.decimal
    if number is None:
        return None
    return float(number * KPA_TO_MMHG if unit is PressureUnit.KPA else number)


@dataclass(frozen=True)
class BloodPressureMmHg:
    """Pressures normalised to mmHg; None where the device sent a special value."""

    systolic: float | None
    diastolic: float | None
    mean_arterial_pressure: float | None
    pulse_rate: float | None  # beats per minute, never affected by the units flag


@dataclass(frozen=True)
class BloodPressureMeasurement:
    """0x2A35. Pressures in ``unit``; ``pulse_rate`` in beats per minute."""

    unit: PressureUnit
    systolic: SFloat
    diastolic: SFloat
    mean_arterial_pressure: SFloat
    time_stamp: DateTime | None = None
    pulse_rate: SFloat | None = None
    user_id: int | None = None  # 255 = unknown user
    status: MeasurementStatus | None = None
    reserved_flags: int = 0  # RFU flag bits (mask 0xE0) as received; ignored for the layout
    trailing_bytes: bytes = b""  # bytes after the last field: ignored, kept for audit

    CHARACTERISTIC: ClassVar[str] = "2A35"
    _SLOTS: ClassVar[tuple[str, str, str]] = ("Systolic", "Diastolic", "Mean Arterial Pressure")

    def __post_init__(self) -> None:
        bytes(self)  # validates every field: EncodeError when one cannot go on the wire

    @classmethod
    def from_values(
        cls,
        systolic: SFloat | float,
        diastolic: SFloat | float,
        mean_arterial_pressure: SFloat | float,
        *,
        unit: PressureUnit = PressureUnit.MMHG,
        time_stamp: DateTime | datetime | None = None,
        pulse_rate: SFloat | float | None = None,
        user_id: int | None = None,
        status: MeasurementStatus | None = None,
    ) -> Self:
        """Build from plain numbers (NaN allowed), e.g. in a simulator."""
        return cls(
            unit,
            SFloat.coerce(systolic),
            SFloat.coerce(diastolic),
            SFloat.coerce(mean_arterial_pressure),
            DateTime.coerce(time_stamp),
            None if pulse_rate is None else SFloat.coerce(pulse_rate),
            user_id,
            status,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        c = BloodPressureLayout.decode(cls.CHARACTERISTIC, data, cls._SLOTS)
        return cls(
            c.unit,
            *c.slots,
            c.time_stamp,
            c.pulse_rate,
            c.user_id,
            c.status,
            c.reserved_flags,
            c.trailing_bytes,
        )

    def layout(self) -> BloodPressureLayout:
        slots = (self.systolic, self.diastolic, self.mean_arterial_pressure)
        return BloodPressureLayout(
            self.unit,
            slots,
            self.time_stamp,
            self.pulse_rate,
            self.user_id,
            self.status,
            self.reserved_flags,
            self.trailing_bytes,
        )

    @property
    def flags(self) -> BloodPressureFlags:
        return self.layout().flags()

    def __bytes__(self) -> bytes:
        return self.layout().encode()

    def in_mmhg(self) -> BloodPressureMmHg:
        return BloodPressureMmHg(
            systolic=_to_mmhg(self.systolic, self.unit),
            diastolic=_to_mmhg(self.diastolic, self.unit),
            mean_arterial_pressure=_to_mmhg(self.mean_arterial_pressure, self.unit),
            pulse_rate=_finite(self.pulse_rate),
        )


@dataclass(frozen=True)
class IntermediateCuffPressure:
    """0x2A36: the systolic slot carries the current cuff pressure; the diastolic and MAP slots
    are unused (the spec says NaN, Nordic sends 0) and kept only to re-encode byte-exactly."""

    unit: PressureUnit
    current_cuff_pressure: SFloat
    time_stamp: DateTime | None = None
    pulse_rate: SFloat | None = None
    user_id: int | None = None
    status: MeasurementStatus | None = None
    reserved_flags: int = 0
    trailing_bytes: bytes = b""
    diastolic_unused: SFloat = field(default_factory=SFloat.nan)
    map_unused: SFloat = field(default_factory=SFloat.nan)

    CHARACTERISTIC: ClassVar[str] = "2A36"
    _SLOTS: ClassVar[tuple[str, str, str]] = (
        "Current Cuff Pressure",
        "Diastolic (unused)",
        "Mean Arterial Pressure (unused)",
    )

    def __post_init__(self) -> None:
        bytes(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        c = BloodPressureLayout.decode(cls.CHARACTERISTIC, data, cls._SLOTS)
        return cls(
            c.unit,
            c.slots[0],
            c.time_stamp,
            c.pulse_rate,
            c.user_id,
            c.status,
            c.reserved_flags,
            c.trailing_bytes,
            c.slots[1],
            c.slots[2],
        )

    def layout(self) -> BloodPressureLayout:
        slots = (self.current_cuff_pressure, self.diastolic_unused, self.map_unused)
        return BloodPressureLayout(
            self.unit,
            slots,
            self.time_stamp,
            self.pulse_rate,
            self.user_id,
            self.status,
            self.reserved_flags,
            self.trailing_bytes,
        )

    @property
    def flags(self) -> BloodPressureFlags:
        return self.layout().flags()

    def __bytes__(self) -> bytes:
        return self.layout().encode()

    def current_cuff_pressure_mmhg(self) -> float | None:
        return _to_mmhg(self.current_cuff_pressure, self.unit)


class BloodPressureFeatureFlag(enum.IntFlag):
    """0x2A49 bits; 6..8 are BLS 1.1 additions (SPEC 3.3, medium confidence), 9..15 RFU."""

    NONE = 0
    BODY_MOVEMENT_DETECTION = 1 << 0
    CUFF_FIT_DETECTION = 1 << 1
    IRREGULAR_PULSE_DETECTION = 1 << 2
    PULSE_RATE_RANGE_DETECTION = 1 << 3
    MEASUREMENT_POSITION_DETECTION = 1 << 4
    MULTIPLE_BOND = 1 << 5
    E2E_CRC = 1 << 6
    USER_DATA_SERVICE = 1 << 7
    USER_FACING_TIME = 1 << 8


@dataclass(frozen=True)
class BloodPressureFeature:
    """0x2A49, exactly 2 bytes. Unknown (RFU) bits are kept in ``features``."""

    features: BloodPressureFeatureFlag = BloodPressureFeatureFlag.NONE

    CHARACTERISTIC: ClassVar[str] = "2A49"
    KNOWN_MASK: ClassVar[int] = 0x01FF

    def __post_init__(self) -> None:
        pack_uint(int(self.features), 2, "Blood Pressure Feature")

    @property
    def supported(self) -> tuple[str, ...]:
        """Names of the known features set, lower case, in bit order."""
        return tuple(
            str(flag.name).lower() for flag in BloodPressureFeatureFlag if flag in self.features
        )

    @property
    def reserved_bits(self) -> int:
        return int(self.features) & ~self.KNOWN_MASK

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        require_length(cls.CHARACTERISTIC, "Blood Pressure Feature", data, 2)
        return cls(BloodPressureFeatureFlag(int.from_bytes(data, "little")))

    def __bytes__(self) -> bytes:
        return int(self.features).to_bytes(2, "little")
