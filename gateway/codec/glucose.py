"""Glucose Service payloads (SPEC.md 4): Glucose Measurement 0x2A18 and Glucose Feature 0x2A51.

Decoded objects keep everything needed to re-encode the value byte for byte: the SFLOAT's own
mantissa/exponent, the units flag even when no concentration is present, RFU flag and status
bits, RFU type/location nibbles and trailing bytes (ignored for meaning, SPEC 7).

Units (never confuse kg/L with mg/dL): the wire carries kg/L or mol/L (flag bit 2).
``concentration_mg_per_dl()`` and ``concentration_mmol_per_l()`` convert with the exact SI factors
(1 kg/L = 100 000 mg/dL, 1 mol/L = 1000 mmol/L) and cross between mass and molar units only with
``MMOL_PER_L_TO_MG_PER_DL`` = 18.016 (shared/clinical/RULES.md; glucose molar mass 180.156 g/mol).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar, Self

from ._reader import Reader, pack_uint, require_length
from .date_time import DateTime
from .errors import EncodeError
from .ieee11073 import SFloat
from .open_enum import Nibble

#: 1 kg/L in mg/dL (exact: 1 kg = 10**6 mg, 1 L = 10 dL).
KG_PER_L_TO_MG_PER_DL = Decimal(100_000)
#: 1 mol/L in mmol/L (exact).
MOL_PER_L_TO_MMOL_PER_L = Decimal(1000)
#: 1 mmol/L of glucose in mg/dL (RULES.md; the only mass <-> molar factor the project uses).
MMOL_PER_L_TO_MG_PER_DL = Decimal("18.016")

__all__ = [
    "KG_PER_L_TO_MG_PER_DL",
    "MMOL_PER_L_TO_MG_PER_DL",
    "MOL_PER_L_TO_MMOL_PER_L",
    "RESERVED_FLAGS_MASK",
    "GlucoseFeature",
    "GlucoseFeatureFlag",
    "GlucoseFlags",
    "GlucoseMeasurement",
    "GlucoseType",
    "GlucoseUnit",
    "SampleLocation",
    "SensorStatus",
    "SensorStatusFlag",
]


# -- open code enums: unknown (RFU) values are kept as pseudo-members, never rejected ------------
class GlucoseUnit(enum.IntEnum):
    """Flag bit 2 of 0x2A18: the concentration's SI unit."""

    KG_PER_L = 0
    MOL_PER_L = 1

    @property
    def label(self) -> str:
        return "mol/L" if self is GlucoseUnit.MOL_PER_L else "kg/L"


class GlucoseFlags(enum.IntFlag):
    """The flags octet of 0x2A18; bits 5..7 are RFU (``RESERVED_FLAGS_MASK``)."""

    TIME_OFFSET = 0x01
    CONCENTRATION = 0x02
    UNITS_MOL_PER_L = 0x04
    SENSOR_STATUS = 0x08
    CONTEXT_FOLLOWS = 0x10


RESERVED_FLAGS_MASK = 0xE0


class GlucoseType(Nibble):
    """Low nibble of Type-Sample Location."""

    CAPILLARY_WHOLE_BLOOD = 1
    CAPILLARY_PLASMA = 2
    VENOUS_WHOLE_BLOOD = 3
    VENOUS_PLASMA = 4
    ARTERIAL_WHOLE_BLOOD = 5
    ARTERIAL_PLASMA = 6
    UNDETERMINED_WHOLE_BLOOD = 7
    UNDETERMINED_PLASMA = 8
    INTERSTITIAL_FLUID = 9
    CONTROL_SOLUTION = 10

    @property
    def text(self) -> str:
        return _TYPE_TEXTS.get(self.value, "RFU")


_TYPE_TEXTS = {
    1: "Capillary Whole blood",
    2: "Capillary Plasma",
    3: "Venous Whole blood",
    4: "Venous Plasma",
    5: "Arterial Whole blood",
    6: "Arterial Plasma",
    7: "Undetermined Whole blood",
    8: "Undetermined Plasma",
    9: "Interstitial Fluid (ISF)",
    10: "Control Solution",
}


class SampleLocation(Nibble):
    """High nibble of Type-Sample Location."""

    FINGER = 1
    ALTERNATE_SITE_TEST = 2
    EARLOBE = 3
    CONTROL_SOLUTION = 4
    NOT_AVAILABLE = 15

    @property
    def text(self) -> str:
        return _LOCATION_TEXTS.get(self.value, "RFU")


_LOCATION_TEXTS = {
    1: "Finger",
    2: "Alternate Site Test (AST)",
    3: "Earlobe",
    4: "Control solution",
    15: "Sample Location value not available",
}


class SensorStatusFlag(enum.IntFlag):
    """Sensor Status Annunciation bits (SIG XML / nRF5 ``ble_gls.h``; Nordic's Android and Kotlin
    libraries swap bits 5 and 6). Bits 12..15 are RFU and kept in the value."""

    NONE = 0
    DEVICE_BATTERY_LOW = 1 << 0
    SENSOR_MALFUNCTION = 1 << 1
    SAMPLE_SIZE_INSUFFICIENT = 1 << 2
    STRIP_INSERTION_ERROR = 1 << 3
    STRIP_TYPE_INCORRECT = 1 << 4
    RESULT_HIGHER_THAN_DEVICE_CAN_PROCESS = 1 << 5
    RESULT_LOWER_THAN_DEVICE_CAN_PROCESS = 1 << 6
    SENSOR_TEMPERATURE_TOO_HIGH = 1 << 7
    SENSOR_TEMPERATURE_TOO_LOW = 1 << 8
    SENSOR_READ_INTERRUPTED = 1 << 9
    GENERAL_DEVICE_FAULT = 1 << 10
    TIME_FAULT = 1 << 11


@dataclass(frozen=True)
class SensorStatus:
    """Sensor Status Annunciation (uint16). Unknown (RFU) bits are kept in ``flags``."""

    flags: SensorStatusFlag = SensorStatusFlag.NONE

    KNOWN_MASK: ClassVar[int] = 0x0FFF

    def __post_init__(self) -> None:
        pack_uint(int(self.flags), 2, "Sensor Status Annunciation")

    @property
    def raw(self) -> int:
        return int(self.flags)

    @property
    def set_names(self) -> tuple[str, ...]:
        """Names of the known bits set, lower case, in bit order."""
        return tuple(str(flag.name).lower() for flag in SensorStatusFlag if flag in self.flags)

    @property
    def reserved_bits(self) -> int:
        return self.raw & ~self.KNOWN_MASK

    def __int__(self) -> int:
        return self.raw


def _sint16(value: int, field: str) -> bytes:
    if not -0x8000 <= value <= 0x7FFF:
        raise EncodeError(f"{field} {value!r} does not fit in a signed 16-bit field")
    return value.to_bytes(2, "little", signed=True)


@dataclass(frozen=True)
class GlucoseMeasurement:
    """0x2A18. ``concentration`` is in ``unit`` (kg/L or mol/L), as sent.

    ``concentration``, ``sample_type`` and ``sample_location`` are present together (flag bit 1)
    or all None. ``unit`` is the flag bit as sent, kept even without a concentration.
    """

    sequence_number: int
    base_time: DateTime
    time_offset: int | None = None  # minutes (sint16); user-facing time = base time + offset
    concentration: SFloat | None = None
    unit: GlucoseUnit = GlucoseUnit.KG_PER_L
    sample_type: GlucoseType | None = None
    sample_location: SampleLocation | None = None
    sensor_status: SensorStatus | None = None
    context_follows: bool = False  # a 0x2A34 with the same sequence number follows
    reserved_flags: int = 0  # RFU flag bits (mask 0xE0) as received
    trailing_bytes: bytes = b""  # bytes after the last field: ignored, kept for audit

    CHARACTERISTIC: ClassVar[str] = "2A18"

    def __post_init__(self) -> None:
        bytes(self)  # validates every field: EncodeError when one cannot go on the wire

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        reader = Reader(cls.CHARACTERISTIC, data)
        flags = reader.uint(1, "Flags")
        sequence_number = reader.uint(2, "Sequence Number")
        base_time = DateTime.read(reader, "Base Time")
        time_offset = None
        if flags & GlucoseFlags.TIME_OFFSET:
            time_offset = int.from_bytes(reader.take(2, "Time Offset"), "little", signed=True)
        concentration = sample_type = sample_location = None
        if flags & GlucoseFlags.CONCENTRATION:
            concentration = SFloat.read(reader, "Glucose Concentration")
            type_location = reader.uint(1, "Type-Sample Location")
            sample_type = GlucoseType(type_location & 0x0F)
            sample_location = SampleLocation(type_location >> 4)
        status = None
        if flags & GlucoseFlags.SENSOR_STATUS:
            raw = reader.uint(2, "Sensor Status Annunciation")
            status = SensorStatus(SensorStatusFlag(raw))
        return cls(
            sequence_number,
            base_time,
            time_offset,
            concentration,
            GlucoseUnit(bool(flags & GlucoseFlags.UNITS_MOL_PER_L)),
            sample_type,
            sample_location,
            status,
            bool(flags & GlucoseFlags.CONTEXT_FOLLOWS),
            flags & RESERVED_FLAGS_MASK,
            reader.rest(),
        )

    @property
    def flags(self) -> GlucoseFlags:
        flags = GlucoseFlags(self.reserved_flags)
        if self.time_offset is not None:
            flags |= GlucoseFlags.TIME_OFFSET
        if self.concentration is not None:
            flags |= GlucoseFlags.CONCENTRATION
        if self.unit is GlucoseUnit.MOL_PER_L:
            flags |= GlucoseFlags.UNITS_MOL_PER_L
        if self.sensor_status is not None:
            flags |= GlucoseFlags.SENSOR_STATUS
        if self.context_follows:
            flags |= GlucoseFlags.CONTEXT_FOLLOWS
        return flags

    def __bytes__(self) -> bytes:
        if self.reserved_flags & ~RESERVED_FLAGS_MASK:
            raise EncodeError(f"reserved_flags {self.reserved_flags:#x} outside mask 0xE0")
        present = (self.concentration, self.sample_type, self.sample_location)
        if any(part is None for part in present) and any(part is not None for part in present):
            raise EncodeError(
                "concentration, sample_type and sample_location go together (flag bit 1)"
            )
        parts = [
            bytes((int(self.flags),)),
            pack_uint(self.sequence_number, 2, "sequence_number"),
            bytes(self.base_time),
        ]
        if self.time_offset is not None:
            parts.append(_sint16(self.time_offset, "time_offset"))
        if self.concentration is not None:
            assert self.sample_type is not None and self.sample_location is not None
            parts.append(bytes(self.concentration))
            nibbles = int(self.sample_location) << 4 | int(self.sample_type)
            parts.append(pack_uint(nibbles, 1, "Type-Sample Location"))
        if self.sensor_status is not None:
            parts.append(self.sensor_status.raw.to_bytes(2, "little"))
        return b"".join(parts) + self.trailing_bytes

    # -- meaning ------------------------------------------------------------------------------
    @property
    def is_control_solution(self) -> bool:
        """A control-solution test, not a patient sample: keep it out of patient data."""
        return (
            self.sample_type is GlucoseType.CONTROL_SOLUTION
            or self.sample_location is SampleLocation.CONTROL_SOLUTION
        )

    def measured_at_device(self) -> datetime | None:
        """User-facing time on the device clock: base time + time offset, naive (no zone).

        None when the base time is unknown/invalid or the sum leaves the datetime range.
        """
        base = self.base_time.to_datetime()
        if base is None:
            return None
        try:
            return base + timedelta(minutes=self.time_offset or 0)
        except OverflowError:
            return None

    def _decimal(self) -> Decimal | None:
        return None if self.concentration is None else self.concentration.decimal

    def concentration_mg_per_dl_exact(self) -> Decimal | None:
        """mg/dL: exact (x 100 000) from kg/L; from mol/L via mmol/L x 18.016 (approximate)."""
        value = self._decimal()
        if value is None:
            return None
        if self.unit is GlucoseUnit.KG_PER_L:
            return value * KG_PER_L_TO_MG_PER_DL
        return value * MOL_PER_L_TO_MMOL_PER_L * MMOL_PER_L_TO_MG_PER_DL

    def concentration_mmol_per_l_exact(self) -> Decimal | None:
        """mmol/L: exact (x 1000) from mol/L; from kg/L via mg/dL / 18.016 (approximate)."""
        value = self._decimal()
        if value is None:
            return None
        if self.unit is GlucoseUnit.MOL_PER_L:
            return value * MOL_PER_L_TO_MMOL_PER_L
        return value * KG_PER_L_TO_MG_PER_DL / MMOL_PER_L_TO_MG_PER_DL

    def concentration_mg_per_dl(self) -> float | None:
        """The concentration in mg/dL; None when absent or a special value (HI/LO, NaN...)."""
        value = self.concentration_mg_per_dl_exact()
        return None if value is None else float(value)

    def concentration_mmol_per_l(self) -> float | None:
        """The concentration in mmol/L; None when absent or a special value (HI/LO, NaN...)."""
        value = self.concentration_mmol_per_l_exact()
        return None if value is None else float(value)


class GlucoseFeatureFlag(enum.IntFlag):
    """0x2A51 bits 0..10; 11..15 RFU."""

    NONE = 0
    LOW_BATTERY_DETECTION = 1 << 0
    SENSOR_MALFUNCTION_DETECTION = 1 << 1
    SENSOR_SAMPLE_SIZE = 1 << 2
    SENSOR_STRIP_INSERTION_ERROR_DETECTION = 1 << 3
    SENSOR_STRIP_TYPE_ERROR_DETECTION = 1 << 4
    SENSOR_RESULT_HIGH_LOW_DETECTION = 1 << 5
    SENSOR_TEMPERATURE_HIGH_LOW_DETECTION = 1 << 6
    SENSOR_READ_INTERRUPT_DETECTION = 1 << 7
    GENERAL_DEVICE_FAULT = 1 << 8
    TIME_FAULT = 1 << 9
    MULTIPLE_BOND = 1 << 10


@dataclass(frozen=True)
class GlucoseFeature:
    """0x2A51, exactly 2 bytes. Unknown (RFU) bits are kept in ``features``."""

    features: GlucoseFeatureFlag = GlucoseFeatureFlag.NONE

    CHARACTERISTIC: ClassVar[str] = "2A51"
    KNOWN_MASK: ClassVar[int] = 0x07FF

    def __post_init__(self) -> None:
        pack_uint(int(self.features), 2, "Glucose Feature")

    @property
    def supported(self) -> tuple[str, ...]:
        """Names of the known features set, lower case, in bit order."""
        return tuple(str(flag.name).lower() for flag in GlucoseFeatureFlag if flag in self.features)

    @property
    def reserved_bits(self) -> int:
        return int(self.features) & ~self.KNOWN_MASK

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        require_length(cls.CHARACTERISTIC, "Glucose Feature", data, 2)
        return cls(GlucoseFeatureFlag(int.from_bytes(data, "little")))

    def __bytes__(self) -> bytes:
        return int(self.features).to_bytes(2, "little")
