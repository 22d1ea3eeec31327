"""What the rules look at: readings reduced to the fields a rule needs, in canonical units."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class BloodPressureObservation:
    """One home blood-pressure reading, in mmHg and beats per minute.

    ``None`` means the device reported no value (NaN or NRes): a failed measurement.
    ``flags`` are the device's quality marks (``homewatch.wire.MeasurementFlag`` values).
    """

    reading_id: str
    measured_at: datetime
    systolic: float | None
    diastolic: float | None
    pulse: float | None = None
    flags: frozenset[str] = field(default_factory=frozenset)
