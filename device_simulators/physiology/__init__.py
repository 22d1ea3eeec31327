"""Physiology of the virtual patients: blood pressure and glucose over time, pure functions of
the patient's profile, its episodes and a seeded random Generator."""

from device_simulators.physiology.blood_pressure import (
    BloodPressureModel,
    BloodPressureProfile,
    BloodPressureSample,
    Crisis,
    Deterioration,
    IrregularPulse,
    MedicationChange,
)
from device_simulators.physiology.glucose import (
    HYPO_LEVEL_1,
    HYPO_LEVEL_2,
    GlucoseDay,
    GlucoseModel,
    GlucoseProfile,
    Hypoglycaemia,
    WorseningControl,
)

__all__ = [
    "HYPO_LEVEL_1",
    "HYPO_LEVEL_2",
    "BloodPressureModel",
    "BloodPressureProfile",
    "BloodPressureSample",
    "Crisis",
    "Deterioration",
    "GlucoseDay",
    "GlucoseModel",
    "GlucoseProfile",
    "Hypoglycaemia",
    "IrregularPulse",
    "MedicationChange",
    "WorseningControl",
]
