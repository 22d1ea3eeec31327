"""Numbers, units and dates as the explanations show them to clinicians."""

from __future__ import annotations

import math
from datetime import datetime

from alerting.plausibility import MG_DL_PER_MMOL_L


def number(value: float, digits: int = 1) -> float | None:
    """A JSON-ready number (None for NaN or infinity)."""
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def mmol(value: float) -> str:
    """Glucose in both units (RULES.md: mmol/L with mg/dL too); 0 stands for a "LO" reading."""
    if value == 0:
        return "LO (below the meter's range)"
    return f"{value:.1f} mmol/L ({value * MG_DL_PER_MMOL_L:.0f} mg/dL)"


def day_text(at: datetime) -> str:
    return at.date().isoformat()


def time_text(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} {at.tzname()}"
