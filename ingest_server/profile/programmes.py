"""Dispensary programmes, targets and schedule: the profile's view of ``alerting``'s catalogue.

Pure. The rule-set files in ``alerting/rulesets`` are the one place that says which ICD-10
categories put a patient in which programme, what each programme's default schedule is, and
which per-patient targets a clinician may set (``alerting.profiles.TARGETS``). The profile only
stores conditions, targets and schedule; this module turns them into the ``PatientProfile`` the
rules read, and computes adherence for the clinician's patient list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from alerting.errors import ProfileError as AlertingProfileError
from alerting.profiles import TARGETS, MeasurementSchedule, PatientProfile, Target
from alerting.programmes import RuleCatalogue
from ingest_server.profile.errors import InvalidValue
from ingest_server.profile.models import ScheduleMetric

#: Days over which adherence to the schedule is measured.
ADHERENCE_DAYS = 7


def catalogue() -> RuleCatalogue:
    return RuleCatalogue.packaged()


def programme_for(icd10_code: str) -> str | None:
    """The dispensary programme an ICD-10 code puts a patient in (None: none of ours)."""
    category = icd10_code.strip().upper()[:3]
    for ruleset in catalogue().rulesets:
        if category in ruleset.conditions:
            return ruleset.programme
    return None


def default_schedule(programmes: Iterable[str]) -> dict[str, float]:
    """Readings per week per metric that the programmes prescribe (first programme wins)."""
    by_name = {rs.programme: rs for rs in catalogue().rulesets}
    schedule: dict[str, float] = {}
    for name in programmes:
        ruleset = by_name.get(name)
        if ruleset is not None:
            for metric, per_week in ruleset.schedule.items():
                schedule.setdefault(metric, per_week)
    return schedule


@dataclass(frozen=True, slots=True)
class TargetInfo:
    name: str
    unit: str
    low: float
    high: float
    meaning: str
    rule_id: str


def target_catalogue() -> list[TargetInfo]:
    return [
        TargetInfo(name, spec.unit, spec.low, spec.high, spec.meaning, spec.rule_id)
        for name, spec in sorted(TARGETS.items())
    ]


def check_target(name: str, value: float | None) -> str:
    """The unit of target ``name``; ``InvalidValue`` for an unknown name or a value out of the
    range a clinician may set (None clears the target: always allowed)."""
    spec = TARGETS.get(name)
    if spec is None:
        raise InvalidValue("name", f"unknown target {name!r} (known: {', '.join(sorted(TARGETS))})")
    if value is not None and not spec.low <= value <= spec.high:
        raise InvalidValue(
            "value", f"target {name} must be between {spec.low:g} and {spec.high:g} {spec.unit}"
        )
    return spec.unit


@dataclass(frozen=True, slots=True)
class StoredTarget:
    name: str
    value: float
    set_by: str
    set_at: datetime
    note: str | None


def patient_profile(
    patient_id: str,
    conditions: Iterable[str],
    targets: Iterable[StoredTarget],
    schedule: Mapping[str, float],
    timezone: str,
    enrolled_at: datetime | None,
) -> PatientProfile:
    """The rules' input for one patient, from what the profile stores (targets already the
    current ones; a stored value the rules no longer accept is a profile error, surfaced)."""
    try:
        return PatientProfile(
            patient_id=patient_id,
            conditions=tuple(conditions),
            targets={
                t.name: Target(value=t.value, set_by=t.set_by, set_at=t.set_at, note=t.note)
                for t in targets
            },
            schedule=MeasurementSchedule(
                blood_pressure_per_week=schedule.get(ScheduleMetric.BLOOD_PRESSURE_PER_WEEK),
                glucose_per_week=schedule.get(ScheduleMetric.GLUCOSE_PER_WEEK),
            ),
            timezone=timezone,
            enrolled_at=enrolled_at,
        )
    except AlertingProfileError as exc:
        raise InvalidValue(exc.field or "profile", str(exc)) from exc


def effective_schedule(profile: PatientProfile) -> dict[str, float]:
    """Readings per week per metric in force: the programmes' defaults, the patient's own
    schedule over them."""
    return dict(catalogue().resolve(profile).schedule)


def adherence(schedule: Mapping[str, float], counts: Mapping[str, int]) -> float | None:
    """Share (0..1) of the readings the schedule asked for in the last ``ADHERENCE_DAYS`` days
    that were taken; extra readings of one metric do not make up for missing ones of another.
    None when nothing is prescribed."""
    expected_total = 0.0
    taken_total = 0.0
    for metric, per_week in schedule.items():
        expected = per_week * ADHERENCE_DAYS / 7
        if expected <= 0:
            continue
        expected_total += expected
        taken_total += min(float(counts.get(metric, 0)), expected)
    if expected_total == 0:
        return None
    return round(taken_total / expected_total, 3)
