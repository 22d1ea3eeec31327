"""Glucose Measurement Context 0x2A34 (SPEC.md 4.2).

Order on the wire: Flags, Sequence Number, Extended Flags (bit 7, right after the sequence
number), Carbohydrate ID + Carbohydrate (bit 0), Meal (bit 1), Tester-Health (bit 2), Exercise
Duration + Intensity (bit 3), Medication ID + Medication (bit 4), HbA1c (bit 6).

Units follow the SIG (XML/GSS), not Nordic's labels: carbohydrate in **kilograms**, medication in
**kilograms or litres** (flag bit 5), the SFLOAT exponent carrying the scale (50 g = 50e-3 kg).
The medication-units bit is kept even when no medication is present, so re-encoding is exact.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Self

from ._reader import Reader, pack_uint
from .ieee11073 import SFloat
from .open_enum import Code8, Nibble

EXERCISE_DURATION_OVERRUN = 0xFFFF

__all__ = [
    "EXERCISE_DURATION_OVERRUN",
    "Carbohydrate",
    "CarbohydrateId",
    "ContextFlags",
    "Exercise",
    "GlucoseMeasurementContext",
    "Health",
    "Meal",
    "Medication",
    "MedicationId",
    "MedicationUnit",
    "SampleTester",
    "SampleTesterHealth",
]


class ContextFlags(enum.IntFlag):
    """The flags octet of 0x2A34 (every bit is defined)."""

    CARBOHYDRATE = 0x01
    MEAL = 0x02
    TESTER_HEALTH = 0x04
    EXERCISE = 0x08
    MEDICATION = 0x10
    MEDICATION_UNITS_LITRES = 0x20
    HBA1C = 0x40
    EXTENDED_FLAGS = 0x80


class CarbohydrateId(Code8):
    BREAKFAST = 1
    LUNCH = 2
    DINNER = 3
    SNACK = 4
    DRINK = 5
    SUPPER = 6
    BRUNCH = 7

    @property
    def text(self) -> str:
        return "RFU" if self.is_reserved else self.name.title()


class Meal(Code8):
    PREPRANDIAL = 1
    POSTPRANDIAL = 2
    FASTING = 3
    CASUAL = 4
    BEDTIME = 5

    @property
    def text(self) -> str:
        return "RFU" if self.is_reserved else self.name.title()


class SampleTester(Nibble):
    """Low nibble of Tester-Health."""

    SELF = 1
    HEALTH_CARE_PROFESSIONAL = 2
    LAB_TEST = 3
    NOT_AVAILABLE = 15

    @property
    def text(self) -> str:
        return _TESTER_TEXTS.get(self.value, "RFU")


_TESTER_TEXTS = {1: "Self", 2: "Health Care Professional", 3: "Lab test", 15: "not available"}


class Health(Nibble):
    """High nibble of Tester-Health."""

    MINOR_HEALTH_ISSUES = 1
    MAJOR_HEALTH_ISSUES = 2
    DURING_MENSES = 3
    UNDER_STRESS = 4
    NO_HEALTH_ISSUES = 5
    NOT_AVAILABLE = 15

    @property
    def text(self) -> str:
        return _HEALTH_TEXTS.get(self.value, "RFU")


_HEALTH_TEXTS = {
    1: "Minor health issues",
    2: "Major health issues",
    3: "During menses",
    4: "Under stress",
    5: "No health issues",
    15: "not available",
}


class MedicationId(Code8):
    RAPID_ACTING_INSULIN = 1
    SHORT_ACTING_INSULIN = 2
    INTERMEDIATE_ACTING_INSULIN = 3
    LONG_ACTING_INSULIN = 4
    PRE_MIXED_INSULIN = 5

    @property
    def text(self) -> str:
        return _MEDICATION_TEXTS.get(self.value, "RFU")


_MEDICATION_TEXTS = {
    1: "Rapid acting insulin",
    2: "Short acting insulin",
    3: "Intermediate acting insulin",
    4: "Long acting insulin",
    5: "Pre-mixed insulin",
}


class MedicationUnit(enum.IntEnum):
    """Flag bit 5 of 0x2A34."""

    KILOGRAMS = 0
    LITRES = 1

    @property
    def label(self) -> str:
        return "L" if self is MedicationUnit.LITRES else "kg"


@dataclass(frozen=True)
class Carbohydrate:
    id: CarbohydrateId
    kilograms: SFloat  # SIG unit kg (Nordic calls it grams): 50 g arrives as 50e-3


@dataclass(frozen=True)
class SampleTesterHealth:
    tester: SampleTester
    health: Health

    @property
    def raw(self) -> int:
        return int(self.health) << 4 | int(self.tester)


@dataclass(frozen=True)
class Exercise:
    duration_s: int  # 65535 = overrun
    intensity_pct: int

    @property
    def overrun(self) -> bool:
        return self.duration_s == EXERCISE_DURATION_OVERRUN


@dataclass(frozen=True)
class Medication:
    id: MedicationId
    amount: SFloat  # in the context's ``medication_unit`` (kg or L)


@dataclass(frozen=True)
class GlucoseMeasurementContext:
    """0x2A34: extra facts about the 0x2A18 record with the same ``sequence_number``."""

    sequence_number: int
    extended_flags: int | None = None  # all bits RFU: kept, not interpreted
    carbohydrate: Carbohydrate | None = None
    meal: Meal | None = None
    tester_health: SampleTesterHealth | None = None
    exercise: Exercise | None = None
    medication: Medication | None = None
    medication_unit: MedicationUnit = MedicationUnit.KILOGRAMS  # flag bit 5 as sent
    hba1c_pct: SFloat | None = None
    trailing_bytes: bytes = b""  # bytes after the last field: ignored, kept for audit

    CHARACTERISTIC: ClassVar[str] = "2A34"

    def __post_init__(self) -> None:
        bytes(self)  # validates every field: EncodeError when one cannot go on the wire

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        reader = Reader(cls.CHARACTERISTIC, data)
        flags = reader.uint(1, "Flags")
        sequence_number = reader.uint(2, "Sequence Number")
        extended = reader.uint(1, "Extended Flags") if flags & ContextFlags.EXTENDED_FLAGS else None
        carbohydrate = None
        if flags & ContextFlags.CARBOHYDRATE:
            carbohydrate_id = CarbohydrateId(reader.uint(1, "Carbohydrate ID"))
            carbohydrate = Carbohydrate(carbohydrate_id, SFloat.read(reader, "Carbohydrate"))
        meal = Meal(reader.uint(1, "Meal")) if flags & ContextFlags.MEAL else None
        tester_health = None
        if flags & ContextFlags.TESTER_HEALTH:
            raw = reader.uint(1, "Tester-Health")
            tester_health = SampleTesterHealth(SampleTester(raw & 0x0F), Health(raw >> 4))
        exercise = None
        if flags & ContextFlags.EXERCISE:
            duration = reader.uint(2, "Exercise Duration")
            exercise = Exercise(duration, reader.uint(1, "Exercise Intensity"))
        medication = None
        if flags & ContextFlags.MEDICATION:
            medication_id = MedicationId(reader.uint(1, "Medication ID"))
            medication = Medication(medication_id, SFloat.read(reader, "Medication"))
        hba1c = SFloat.read(reader, "HbA1c") if flags & ContextFlags.HBA1C else None
        return cls(
            sequence_number,
            extended,
            carbohydrate,
            meal,
            tester_health,
            exercise,
            medication,
            MedicationUnit(bool(flags & ContextFlags.MEDICATION_UNITS_LITRES)),
            hba1c,
            reader.rest(),
        )

    @property
    def flags(self) -> ContextFlags:
        flags = ContextFlags(0)
        for present, bit in (
            (self.carbohydrate, ContextFlags.CARBOHYDRATE),
            (self.meal, ContextFlags.MEAL),
            (self.tester_health, ContextFlags.TESTER_HEALTH),
            (self.exercise, ContextFlags.EXERCISE),
            (self.medication, ContextFlags.MEDICATION),
            (self.hba1c_pct, ContextFlags.HBA1C),
            (self.extended_flags, ContextFlags.EXTENDED_FLAGS),
        ):
            if present is not None:
                flags |= bit
        if self.medication_unit is MedicationUnit.LITRES:
            flags |= ContextFlags.MEDICATION_UNITS_LITRES
        return flags

    def __bytes__(self) -> bytes:
        parts = [
            bytes((int(self.flags),)),
            pack_uint(self.sequence_number, 2, "sequence_number"),
        ]
        if self.extended_flags is not None:
            parts.append(pack_uint(self.extended_flags, 1, "extended_flags"))
        if self.carbohydrate is not None:
            parts.append(pack_uint(int(self.carbohydrate.id), 1, "carbohydrate id"))
            parts.append(bytes(self.carbohydrate.kilograms))
        if self.meal is not None:
            parts.append(pack_uint(int(self.meal), 1, "meal"))
        if self.tester_health is not None:
            parts.append(pack_uint(self.tester_health.raw, 1, "tester-health"))
        if self.exercise is not None:
            parts.append(pack_uint(self.exercise.duration_s, 2, "exercise duration"))
            parts.append(pack_uint(self.exercise.intensity_pct, 1, "exercise intensity"))
        if self.medication is not None:
            parts.append(pack_uint(int(self.medication.id), 1, "medication id"))
            parts.append(bytes(self.medication.amount))
        if self.hba1c_pct is not None:
            parts.append(bytes(self.hba1c_pct))
        return b"".join(parts) + self.trailing_bytes
