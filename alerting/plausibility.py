"""Plausibility of home readings: a value outside these ranges is flagged, not used.

Ranges from ../shared/clinical/RULES.md (BLS caps at 300 mmHg; telehealth data-cleaning practice;
meters report outside 0.6-33.3 mmol/L as special values, the widest meters read to 41.6). When an
implausible value would be plausible in another unit (a kPa cuff value taken as mmHg, a mg/dL
glucose taken as mmol/L) the reason says so: a unit mix-up is flagged and explained, never
silently converted.
"""

from __future__ import annotations

from alerting.observations import BloodPressureObservation

SYSTOLIC_RANGE = (50.0, 300.0)
DIASTOLIC_RANGE = (20.0, 200.0)
PULSE_RANGE = (25.0, 250.0)
GLUCOSE_RANGE_MMOL_L = (0.5, 42.0)
MMHG_PER_KPA = 7.50062
#: mg/dL per mmol/L for glucose (molar mass 180.16 g/mol), as RULES.md states.
MG_DL_PER_MMOL_L = 18.016


def blood_pressure_problem(obs: BloodPressureObservation) -> str | None:
    """Why the pressure values of ``obs`` cannot be used, or None when they are plausible."""
    if obs.systolic is None or obs.diastolic is None:
        return "failed measurement (no value)"
    if not SYSTOLIC_RANGE[0] <= obs.systolic <= SYSTOLIC_RANGE[1]:
        return (
            f"systolic {obs.systolic:g} mmHg outside {SYSTOLIC_RANGE[0]:g}-{SYSTOLIC_RANGE[1]:g}"
            + (_kpa_hint(obs.systolic, obs.diastolic))
        )
    if not DIASTOLIC_RANGE[0] <= obs.diastolic <= DIASTOLIC_RANGE[1]:
        low, high = DIASTOLIC_RANGE
        return f"diastolic {obs.diastolic:g} mmHg outside {low:g}-{high:g}"
    if obs.diastolic >= obs.systolic:
        return f"diastolic {obs.diastolic:g} not below systolic {obs.systolic:g}"
    return None


def looks_like_kpa(systolic: float, diastolic: float) -> bool:
    """Both values would be plausible mmHg if they were kPa (e.g. 16.0/10.7)."""
    s, d = systolic * MMHG_PER_KPA, diastolic * MMHG_PER_KPA
    return (
        SYSTOLIC_RANGE[0] <= s <= SYSTOLIC_RANGE[1]
        and DIASTOLIC_RANGE[0] <= d <= DIASTOLIC_RANGE[1]
        and d < s
    )


def glucose_problem(mmol_l: float) -> str | None:
    """Why a glucose value cannot be used, or None when it is plausible."""
    low, high = GLUCOSE_RANGE_MMOL_L
    if low <= mmol_l <= high:
        return None
    text = f"glucose {mmol_l:g} mmol/L outside {low:g}-{high:g}"
    if looks_like_mg_dl(mmol_l):
        text += (
            f"; looks like mg/dL ({mmol_l:g} mg/dL = {mmol_l / MG_DL_PER_MMOL_L:.1f} mmol/L):"
            " a unit mix-up, not converted"
        )
    return text


def looks_like_mg_dl(value: float) -> bool:
    low, high = GLUCOSE_RANGE_MMOL_L
    return value > high and low <= value / MG_DL_PER_MMOL_L <= high


def _kpa_hint(systolic: float, diastolic: float) -> str:
    if not looks_like_kpa(systolic, diastolic):
        return ""
    s, d = systolic * MMHG_PER_KPA, diastolic * MMHG_PER_KPA
    return f"; looks like kPa ({s:.0f}/{d:.0f} mmHg): a unit mix-up, not converted"
