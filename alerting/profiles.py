"""The patient as the rules see them: conditions, clinician-set targets, schedule, time zone.

A patient's dispensary programmes come from their ICD-10 conditions (the rule-set files list the
categories each programme covers). A target set by a clinician for this patient overrides the
programme's default for one rule parameter; it records who set it and when, because an alert
that quotes a target must say whose it is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerting.errors import ProfileError

#: An ICD-10 code: category (letter, two digits) and an optional subdivision ("I10", "E11.65").
_ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """Which rule parameter a named target overrides, and the values a clinician may set."""

    rule_id: str
    parameter: str
    unit: str
    low: float
    high: float
    meaning: str


#: The targets a clinician can set per patient. Safety thresholds (crisis, level-2 hypo) are not
#: targets: they are the same for everyone and change only with a new rule-set version.
TARGETS: dict[str, TargetSpec] = {
    "home_systolic_mmhg": TargetSpec(
        "bp.home_mean_above_target",
        "systolic_target",
        "mmHg",
        100,
        180,
        "home systolic target (a protocol mean at or above it alerts)",
    ),
    "home_diastolic_mmhg": TargetSpec(
        "bp.home_mean_above_target",
        "diastolic_target",
        "mmHg",
        60,
        110,
        "home diastolic target (a protocol mean at or above it alerts)",
    ),
    "hypo_events_per_week_max": TargetSpec(
        "glucose.hypo_frequency",
        "events_per_week_max",
        "events/week",
        0,
        14,
        "hypoglycaemia events tolerated per week",
    ),
    "time_below_range_max_percent": TargetSpec(
        "glucose.time_below_range",
        "below_level_1_max_percent",
        "%",
        0,
        25,
        "share of readings below 3.9 mmol/L tolerated",
    ),
    "time_below_level_2_max_percent": TargetSpec(
        "glucose.time_below_range",
        "below_level_2_max_percent",
        "%",
        0,
        10,
        "share of readings below 3.0 mmol/L tolerated",
    ),
    "glucose_cv_max_percent": TargetSpec(
        "glucose.variability",
        "cv_max_percent",
        "%",
        20,
        60,
        "glucose coefficient of variation tolerated",
    ),
}


@dataclass(frozen=True, slots=True)
class Target:
    """A per-patient target value, with who set it and when (quoted in the alerts it shapes)."""

    value: float
    set_by: str
    set_at: datetime
    note: str | None = None

    def describe(self, unit: str) -> str:
        return f"{self.value:g} {unit}, set by {self.set_by} on {self.set_at:%Y-%m-%d}"


@dataclass(frozen=True, slots=True)
class MeasurementSchedule:
    """Prescribed readings per week per metric; None keeps the programme's default, 0 means not
    prescribed (no adherence rule for that metric)."""

    blood_pressure_per_week: float | None = None
    glucose_per_week: float | None = None

    def __post_init__(self) -> None:
        for name in ("blood_pressure_per_week", "glucose_per_week"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 100:
                raise ProfileError(f"{name} must be between 0 and 100, not {value!r}", field=name)


@dataclass(frozen=True)
class PatientProfile:
    """The input of every per-patient evaluation.

    ``conditions`` are ICD-10 codes (upper case; "I10", "E11.9"). ``timezone`` is an IANA zone:
    the patient's days, mornings and evenings are local. ``enrolled_at`` (optional) tells the
    adherence rules since when readings were expected.
    """

    patient_id: str
    conditions: tuple[str, ...]
    targets: Mapping[str, Target] = field(default_factory=dict)
    schedule: MeasurementSchedule = MeasurementSchedule()
    timezone: str = "UTC"
    enrolled_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.patient_id:
            raise ProfileError("patient_id must not be empty", field="patient_id")
        if isinstance(self.conditions, str):
            raise ProfileError("conditions must be a list of ICD-10 codes", field="conditions")
        codes = tuple(c.strip().upper() for c in self.conditions)
        for code in codes:
            if not _ICD10.match(code):
                raise ProfileError(f"not an ICD-10 code: {code!r}", field="conditions")
        object.__setattr__(self, "conditions", codes)
        for name, target in self.targets.items():
            spec = TARGETS.get(name)
            if spec is None:
                known = ", ".join(sorted(TARGETS))
                raise ProfileError(f"unknown target {name!r} (known: {known})", field=name)
            if not spec.low <= target.value <= spec.high:
                raise ProfileError(
                    f"target {name} = {target.value:g} {spec.unit} outside"
                    f" {spec.low:g}-{spec.high:g}",
                    field=name,
                )
            if target.set_at.tzinfo is None or not target.set_by:
                raise ProfileError(
                    f"target {name} needs who set it and an aware set_at", field=name
                )
        if self.enrolled_at is not None and self.enrolled_at.tzinfo is None:
            raise ProfileError("enrolled_at must be time-zone aware", field="enrolled_at")
        _zone(self.timezone)  # fails early on a bad zone name

    @property
    def tz(self) -> ZoneInfo:
        return _zone(self.timezone)

    @property
    def condition_categories(self) -> frozenset[str]:
        """The three-character ICD-10 categories ("E11.65" -> "E11")."""
        return frozenset(c[:3] for c in self.conditions)

    def key(self) -> tuple[Any, ...]:
        """What the effective rules depend on: patients with equal keys share them."""
        return (
            self.condition_categories,
            tuple(sorted(self.targets.items())),
            self.schedule,
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PatientProfile:
        """A profile from a TOML/JSON document (the backtest's ``--profile`` file)::

        patient_id = "p-0001"
        conditions = ["I10", "E11.9"]
        timezone = "Europe/Moscow"
        [schedule]
        blood_pressure_per_week = 14
        [targets.home_systolic_mmhg]
        value = 130
        set_by = "Dr Ivanova"
        set_at = 2026-10-01T09:00:00+03:00
        """
        try:
            targets = {
                name: Target(
                    value=float(t["value"]),
                    set_by=str(t["set_by"]),
                    set_at=_datetime(t["set_at"], f"targets.{name}.set_at"),
                    note=t.get("note"),
                )
                for name, t in dict(data.get("targets") or {}).items()
            }
            schedule = MeasurementSchedule(**dict(data.get("schedule") or {}))
            enrolled = data.get("enrolled_at")
            return cls(
                patient_id=str(data["patient_id"]),
                conditions=tuple(data.get("conditions") or ()),
                targets=targets,
                schedule=schedule,
                timezone=str(data.get("timezone", "UTC")),
                enrolled_at=None if enrolled is None else _datetime(enrolled, "enrolled_at"),
            )
        except ProfileError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"malformed profile: {exc!r}") from exc


def _datetime(value: Any, name: str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ProfileError(f"{name} must be a date-time with a UTC offset", field=name)
    return value


@functools.cache
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ProfileError(f"unknown time zone {name!r}", field="timezone") from exc
