"""Plausibility of home blood-pressure values: a reading outside these ranges is flagged, not used.

Ranges from ../shared/clinical/RULES.md (BLS caps at 300 mmHg; telehealth data-cleaning practice).
"""

from __future__ import annotations

from alerting.observations import BloodPressureObservation

SYSTOLIC_RANGE = (50.0, 300.0)
DIASTOLIC_RANGE = (20.0, 200.0)
PULSE_RANGE = (25.0, 250.0)


def blood_pressure_problem(obs: BloodPressureObservation) -> str | None:
    """Why the pressure values of ``obs`` cannot be used, or None when they are plausible."""
    if obs.systolic is None or obs.diastolic is None:
        return "failed measurement (no value)"
    if not SYSTOLIC_RANGE[0] <= obs.systolic <= SYSTOLIC_RANGE[1]:
        return f"systolic {obs.systolic:g} mmHg outside {SYSTOLIC_RANGE[0]:g}-{SYSTOLIC_RANGE[1]:g}"
    if not DIASTOLIC_RANGE[0] <= obs.diastolic <= DIASTOLIC_RANGE[1]:
        low, high = DIASTOLIC_RANGE
        return f"diastolic {obs.diastolic:g} mmHg outside {low:g}-{high:g}"
    if obs.diastolic >= obs.systolic:
        return f"diastolic {obs.diastolic:g} not below systolic {obs.systolic:g}"
    return None
