"""Scenario files: a cohort described in TOML, parsed into typed, validated objects.

A scenario says how many patients of which kinds there are, their devices and how they use
them, their conditions (ICD-10) and dispensary programme, and the events of the run (crises,
hypoglycaemia, deteriorations, device faults...). ``device_simulators.cohort`` turns it into
virtual patients; the same scenario and seed always give the same cohort. The shipped scenarios
live in ``device_simulators/scenarios/`` (``demo``, ``mixed-50``, ``bench-1000``); their comments
document every key. A parameter that varies between patients is written ``[mean, sd]`` (drawn
per patient from a normal distribution), a fixed one as a number.

Every problem is a ``ScenarioError`` that names the file, the place (``patients[1].events[0]``)
and the reason; unknown keys are errors too, so a typo never silently does nothing.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from device_simulators.behaviour import Adherence, Artefacts, Schedule
from device_simulators.devices import FAULT_KINDS, DeviceType, GlucoseDisplayUnit
from device_simulators.errors import ScenarioError
from device_simulators.toml_table import Invalid, Table, integer, number, time_of_day, type_name
from gateway.codec.glucose_context import Meal

#: Clinical event kinds; device fault kinds are ``devices.FAULT_KINDS``.
ClinicalKind = Literal[
    "hypertensive_crisis",
    "deterioration",
    "medication_change",
    "irregular_pulse",
    "hypoglycaemia",
    "worsening_control",
]
CLINICAL_KINDS: tuple[str, ...] = get_args(ClinicalKind)
EVENT_KINDS: tuple[str, ...] = (*CLINICAL_KINDS, *FAULT_KINDS)
#: Faults a cuff can act out (a meter re-sends nothing: it numbers every record itself).
CUFF_ONLY_FAULTS = frozenset({"resend"})
BUILTIN_PACKAGE = "device_simulators"
BUILTIN_DIRECTORY = "scenarios"
_ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")
DEFAULT_MANUFACTURER = "Homewatch Simulated"
DEFAULT_MODELS: dict[str, str] = {"cuff": "BP-Sim 1", "meter": "GL-Sim 1"}


@dataclass(frozen=True, slots=True)
class Param:
    """A number that may differ between patients: ``mean`` plus a normal ``sd`` (0: fixed)."""

    mean: float
    sd: float = 0.0

    def draw(self, rng: np.random.Generator) -> float:
        """Always draws one number, so the stream does not depend on whether ``sd`` is 0."""
        return float(self.mean + rng.normal(0.0, 1.0) * self.sd)


@dataclass(frozen=True, slots=True)
class BloodPressureSpec:
    systolic: Param
    diastolic: Param
    pulse: Param = Param(72.0, 6.0)
    within_person_sd: float = 5.0
    morning_surge: Param = Param(8.0)
    night_dip: float = 10.0
    medication_effect: Param = Param(0.0)


@dataclass(frozen=True, slots=True)
class GlucoseSpec:
    fasting: Param
    day_to_day_sd: float = 0.4
    meal_rise: Param = Param(3.0)
    meals: tuple[time, ...] = (time(8, 0), time(13, 0), time(19, 0))
    meal_jitter_minutes: float = 20.0
    peak_minutes: float = 60.0
    meter_cv: float = 0.05


@dataclass(frozen=True, slots=True)
class DeviceUse:
    """A device a patient of the group has and how they use it."""

    type: DeviceType
    model: str
    manufacturer: str = DEFAULT_MANUFACTURER
    firmware: str = "1.0.0"
    clock: bool = False
    battery: int = 90
    schedule: Schedule = field(default_factory=lambda: Schedule((time(7, 0),)))
    tag_probability: float = 0.0
    control_solution_every_days: float | None = None
    unit: GlucoseDisplayUnit = "mg/dL"


@dataclass(frozen=True, slots=True)
class EventSpec:
    """An event for some patients of a group.

    Who: ``members`` (1-based, within the group) or a ``share`` of the group picked at random.
    When: ``day`` (0-based day of the run) or a random day in ``days``; ``time_of_day`` (local) or a
    random moment within ``hours``. ``count`` occurrences per patient. ``params``: the kind's
    own settings (defaults filled in), see ``EVENT_PARAMETERS``.
    """

    kind: str
    share: float = 1.0
    members: tuple[int, ...] | None = None
    day: int | None = None
    days: tuple[int, int] | None = None
    time_of_day: time | None = None
    hours: tuple[float, float] = (8.0, 22.0)
    count: int = 1
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> DeviceType | None:
        return self.params.get("device")


@dataclass(frozen=True, slots=True)
class PatientGroup:
    """Patients of one kind: the same distributions, devices, behaviour and events."""

    kind: str
    count: int
    patient_ids: tuple[str, ...] | None = None
    names: tuple[str, ...] | None = None
    programme: str | None = None
    conditions: tuple[str, ...] = ()
    blood_pressure: BloodPressureSpec | None = None
    glucose: GlucoseSpec | None = None
    adherence: Adherence = field(default_factory=Adherence)
    artefacts: Artefacts = field(default_factory=Artefacts)
    devices: tuple[DeviceUse, ...] = ()
    events: tuple[EventSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class UnknownDevices:
    """Devices of nobody in the cohort advertising nearby (a neighbour's cuff)."""

    type: DeviceType
    count: int = 1
    model: str = "BP-X 9"
    manufacturer: str = "Other Vendor"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    seed: int
    days: int
    timezone: ZoneInfo
    groups: tuple[PatientGroup, ...]
    description: str = ""
    id_prefix: str = "p-"
    unknown_devices: tuple[UnknownDevices, ...] = ()
    source: str = "<string>"

    @property
    def patient_count(self) -> int:
        return sum(g.count for g in self.groups)


# --- event parameters ---------------------------------------------------------------------------

#: Per event kind: parameter name -> (kind of value, default; None = required).
_ParamKind = Literal["param", "number", "int", "device"]
EVENT_PARAMETERS: dict[str, dict[str, tuple[_ParamKind, Any]]] = {
    "hypertensive_crisis": {
        "systolic": ("param", Param(196.0, 6.0)),
        "diastolic": ("param", Param(122.0, 4.0)),
        "remeasure_minutes": ("number", 5.0),
    },
    "deterioration": {
        "slope_mmhg_per_day": ("param", Param(1.0)),
        "duration_days": ("number", 21.0),
    },
    "medication_change": {
        "effect_mmhg": ("param", None),
        "onset_days": ("number", 5.0),
    },
    "irregular_pulse": {
        "duration_days": ("number", 14.0),
        "share_of_readings": ("number", 0.4),
    },
    "hypoglycaemia": {
        "nadir": ("param", Param(2.6, 0.2)),
        "duration_minutes": ("number", 45.0),
    },
    "worsening_control": {
        "fasting_per_day": ("param", Param(0.1)),
        "duration_days": ("number", 21.0),
        "meal_rise_growth": ("number", 0.5),
    },
    "link_drop": {"device": ("device", None), "records": ("int", 1)},
    "resend": {"device": ("device", "cuff"), "records": ("int", 3)},
    "low_battery": {"device": ("device", None), "level": ("int", 10)},
    "out_of_range": {"device": ("device", None), "records": ("int", 1)},
    "clock_drift": {
        "device": ("device", None),
        "offset_minutes": ("param", Param(0.0)),
        "drift_ppm": ("param", Param(50.0)),
    },
    "clock_unset": {"device": ("device", None)},
}
#: Faults fixed when the device is built: they can only be "from the start".
CLOCK_FAULTS = frozenset({"clock_drift", "clock_unset"})


# --- loading --------------------------------------------------------------------------------------


def builtin_scenarios() -> list[str]:
    """Names of the scenarios shipped with the simulators."""
    folder = resources.files(BUILTIN_PACKAGE).joinpath(BUILTIN_DIRECTORY)
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_scenario(ref: str | Path) -> Scenario:
    """A scenario from a file path, or a built-in one by name (``demo``, ``mixed-50``...)."""
    path = Path(ref)
    if path.is_file():
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(str(path), None, f"cannot read: {exc}") from exc
        return parse_scenario(text, str(path))
    name = str(ref)
    if name in builtin_scenarios():
        folder = resources.files(BUILTIN_PACKAGE).joinpath(BUILTIN_DIRECTORY)
        text = folder.joinpath(f"{name}.toml").read_text("utf-8")
        return parse_scenario(text, f"{name} (built-in)")
    raise ScenarioError(
        str(ref),
        None,
        f"no such file, nor a built-in scenario (built-in: {', '.join(builtin_scenarios())})",
    )


def parse_scenario(text: str, source: str = "<string>") -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, None, f"not valid TOML: {exc}") from exc
    return _Parser(source).scenario(data)


# --- the parser ---------------------------------------------------------------------------------


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def scenario(self, data: dict[str, Any]) -> Scenario:
        root = Table(self.source, data)
        head = root.table("scenario")
        if head is None:
            root.fail("a [scenario] table is required (name, seed, days)")
        name = head.text("name")
        seed = head.integer("seed", 0, low=0)
        days = head.integer("days", 7, low=1, high=3660)
        zone_name = head.text("timezone", "UTC")
        try:
            timezone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            head.fail(
                f"unknown time zone {zone_name!r} (an IANA name such as Europe/Moscow)", "timezone"
            )
        description = head.text("description", "")
        id_prefix = head.text("id_prefix", "p-")
        head.done()
        groups = tuple(self.group(t, days) for t in root.tables("patients"))
        if not groups:
            root.fail("at least one [[patients]] group is required")
        unknown = tuple(self.unknown(t) for t in root.tables("unknown_devices"))
        root.done()
        scenario = Scenario(
            name, seed, days, timezone, groups, description, id_prefix, unknown, self.source
        )
        self._check_ids(scenario)
        return scenario

    def group(self, t: Table, days: int) -> PatientGroup:
        kind = t.text("kind")
        count = t.integer("count", 1, low=1, high=1_000_000)
        ids = t.strings("patient_ids", ()) or None
        names = t.strings("names", ()) or None
        for key, values in (("patient_ids", ids), ("names", names)):
            if values is not None and len(values) != count:
                t.fail(f"has {len(values)} entries for count = {count}", key)
        programme = t.text("programme", "") or None
        conditions = t.strings("conditions", ())
        for code in conditions:
            if not _ICD10.match(code):
                t.fail(f"{code!r} is not an ICD-10 code (e.g. I10, E11.9)", "conditions")
        bp_table, glucose_table = t.table("blood_pressure"), t.table("glucose")
        blood_pressure = None if bp_table is None else self.blood_pressure(bp_table)
        glucose = None if glucose_table is None else self.glucose(glucose_table)
        adherence_table, artefacts_table = t.table("adherence"), t.table("artefacts")
        adherence = Adherence() if adherence_table is None else self.adherence(adherence_table)
        artefacts = Artefacts() if artefacts_table is None else self.artefacts(artefacts_table)
        devices = tuple(self.device(d) for d in t.tables("devices"))
        types = [d.type for d in devices]
        if len(set(types)) != len(types):
            t.fail(f"a patient has at most one device of each type, got {types}", "devices")
        if "cuff" in types and blood_pressure is None:
            t.fail("patients with a cuff need a [patients.blood_pressure] table")
        if "meter" in types and glucose is None:
            t.fail("patients with a meter need a [patients.glucose] table")
        events = tuple(self.event(e, count, set(types), days) for e in t.tables("events"))
        t.done()
        return PatientGroup(
            kind,
            count,
            ids,
            names,
            programme,
            conditions,
            blood_pressure,
            glucose,
            adherence,
            artefacts,
            devices,
            events,
        )

    def blood_pressure(self, t: Table) -> BloodPressureSpec:
        spec = BloodPressureSpec(
            systolic=self.param(t, "systolic"),
            diastolic=self.param(t, "diastolic"),
            pulse=self.param(t, "pulse", Param(72.0, 6.0)),
            within_person_sd=t.number("within_person_sd", 5.0, low=0, high=30),
            morning_surge=self.param(t, "morning_surge", Param(8.0)),
            night_dip=t.number("night_dip", 10.0, low=0, high=60),
            medication_effect=self.param(t, "medication_effect", Param(0.0)),
        )
        if not 60 <= spec.systolic.mean <= 260:
            t.fail(f"mean systolic {spec.systolic.mean} is not a living patient's", "systolic")
        if not 30 <= spec.diastolic.mean < spec.systolic.mean:
            t.fail("mean diastolic must be 30 or more and below systolic", "diastolic")
        t.done()
        return spec

    def glucose(self, t: Table) -> GlucoseSpec:
        spec = GlucoseSpec(
            fasting=self.param(t, "fasting"),
            day_to_day_sd=t.number("day_to_day_sd", 0.4, low=0, high=5),
            meal_rise=self.param(t, "meal_rise", Param(3.0)),
            meals=t.times("meals", (time(8, 0), time(13, 0), time(19, 0))),
            meal_jitter_minutes=t.number("meal_jitter_minutes", 20.0, low=0, high=180),
            peak_minutes=t.number("peak_minutes", 60.0, low=10, high=240),
            meter_cv=t.number("meter_cv", 0.05, low=0, high=0.5),
        )
        if not 2.5 <= spec.fasting.mean <= 25:
            t.fail(f"mean fasting glucose {spec.fasting.mean} mmol/L is out of 2.5..25", "fasting")
        t.done()
        return spec

    def adherence(self, t: Table) -> Adherence:
        stop = t.integer("stop_after_day", -1, low=0) if t.has("stop_after_day") else None
        adherence = Adherence(
            skip_day=t.number("skip_day", 0.0, low=0, high=1),
            skip_session=t.number("skip_session", 0.0, low=0, high=1),
            weekends_only=t.boolean("weekends_only", False),
            stop_after_day=stop,
        )
        t.done()
        return adherence

    def artefacts(self, t: Table) -> Artefacts:
        artefacts = Artefacts(
            movement=t.number("movement", 0.0, low=0, high=1),
            loose_cuff=t.number("loose_cuff", 0.0, low=0, high=1),
            loose_cuff_nan=t.number("loose_cuff_nan", 0.5, low=0, high=1),
            duplicate_press=t.number("duplicate_press", 0.0, low=0, high=1),
        )
        t.done()
        return artefacts

    def device(self, t: Table) -> DeviceUse:
        device_type = cast(DeviceType, self.choice(t, "type", ("cuff", "meter")))
        times = t.times("times", (time(7, 0),))
        meals: tuple[Meal | None, ...] = ()
        if t.has("meals"):
            if device_type != "meter":
                t.fail("meal tags are for meters", "meals")
            meals = tuple(self.meal(t, name) for name in t.strings("meals"))
            if len(meals) != len(times):
                t.fail(f"{len(meals)} meal tags for {len(times)} times", "meals")
        schedule = Schedule(
            times=times,
            duplicates=t.integer("duplicates", 1, low=1, high=10),
            gap=timedelta(minutes=t.number("gap_minutes", 2.0, low=0, high=120)),
            jitter_minutes=t.number("jitter_minutes", 0.0, low=0, high=120),
            meals=meals,
        )
        every = (
            t.number("control_solution_every_days", 0.0, low=1)
            if t.has("control_solution_every_days")
            else None
        )
        if every is not None and device_type != "meter":
            t.fail("control-solution tests are for meters", "control_solution_every_days")
        tag_probability = t.number("tag_probability", 0.0, low=0, high=1)
        unit = self.choice(t, "unit", ("mg/dL", "mmol/L"), "mg/dL")
        device = DeviceUse(
            type=device_type,
            model=t.text("model", DEFAULT_MODELS[device_type]),
            manufacturer=t.text("manufacturer", DEFAULT_MANUFACTURER),
            firmware=t.text("firmware", "1.0.0"),
            clock=t.boolean("clock", False),
            battery=t.integer("battery", 90, low=0, high=100),
            schedule=schedule,
            tag_probability=tag_probability,
            control_solution_every_days=every,
            unit=cast(GlucoseDisplayUnit, unit),
        )
        t.done()
        return device

    def event(self, t: Table, count: int, device_types: set[str], days: int) -> EventSpec:
        kind = self.choice(t, "kind", EVENT_KINDS)
        members = None
        if t.has("members"):
            if t.has("share"):
                t.fail("give either members or share, not both")
            members = t.get("members", None, _members)
            if any(m > count for m in members):
                t.fail(f"the group has {count} patients", "members")
        share = t.number("share", 1.0, low=0, high=1)
        day = days_range = None
        if t.has("day"):
            if t.has("days"):
                t.fail("give either day or days, not both")
            day = t.integer("day", 0, low=0)
        elif t.has("days"):
            days_range = t.get("days", None, _day_range)
        at = None
        if t.has("time"):
            if t.has("hours"):
                t.fail("give either time or hours, not both")
            at = t.get("time", None, time_of_day)
        hours = t.get("hours", (8.0, 22.0), _hour_range)
        occurrences = t.integer("count", 1, low=1, high=1000)
        if occurrences > 1 and day is not None:
            t.fail("several occurrences need a range of days (days = [first, last])", "count")
        params = self.event_params(t, kind, device_types)
        if kind in CLOCK_FAULTS and (day not in (None, 0) or days_range is not None or at):
            t.fail(
                f"{kind} applies from the start of the run: the device's clock is built "
                "with it (leave out day, days and time)"
            )
        t.done()
        return EventSpec(kind, share, members, day, days_range, at, hours, occurrences, params)

    def event_params(self, t: Table, kind: str, device_types: set[str]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, (value_kind, default) in EVENT_PARAMETERS[kind].items():
            if value_kind == "param":
                params[name] = self.param(t, name, default)
            elif value_kind == "number":
                params[name] = t.number(name, default)
            elif value_kind == "int":
                params[name] = t.integer(name, default, low=0)
            else:
                device = self.choice(t, name, ("cuff", "meter"), default)
                if device not in device_types:
                    t.fail(f"the group has no {device} (devices: {sorted(device_types)})", name)
                if kind in CUFF_ONLY_FAULTS and device != "cuff":
                    t.fail(f"{kind} is a cuff fault", name)
                params[name] = device
        if kind == "irregular_pulse" and not 0 <= params["share_of_readings"] <= 1:
            t.fail("must be 0..1", "share_of_readings")
        return params

    def unknown(self, t: Table) -> UnknownDevices:
        device_type = cast(DeviceType, self.choice(t, "type", ("cuff", "meter")))
        spec = UnknownDevices(
            type=device_type,
            count=t.integer("count", 1, low=1, high=100),
            model=t.text("model", "BP-X 9" if device_type == "cuff" else "GL-X 9"),
            manufacturer=t.text("manufacturer", "Other Vendor"),
        )
        t.done()
        return spec

    def param(self, t: Table, key: str, default: Param | None = None) -> Param:
        return t.get(key, default, _param)

    def choice(
        self, t: Table, key: str, options: tuple[str, ...], default: str | None = None
    ) -> str:
        value = t.text(key, default)
        if value not in options:
            t.fail(f"{value!r} is not one of: {', '.join(options)}", key)
        return value

    def meal(self, t: Table, name: str) -> Meal | None:
        if name in ("", "none"):
            return None
        try:
            return Meal[name.upper()]
        except KeyError:
            known = ", ".join(m.name.lower() for m in Meal if not m.is_reserved)
            t.fail(f"unknown meal {name!r} (known: {known}, none)", "meals")

    def _check_ids(self, scenario: Scenario) -> None:
        seen: set[str] = set()
        ordinal = 0
        for gi, group in enumerate(scenario.groups):
            for k in range(group.count):
                ordinal += 1
                pid = group.patient_ids[k] if group.patient_ids else None
                pid = pid or f"{scenario.id_prefix}{ordinal:04d}"
                if pid in seen:
                    raise ScenarioError(
                        self.source, f"patients[{gi}]", f"patient id {pid!r} is used twice"
                    )
                seen.add(pid)


# --- scenario value checks (raise Invalid with the reason) -------------------------------------


def _param(value: object) -> Param:
    if isinstance(value, list):
        if len(value) != 2:
            raise Invalid("a varying value is [mean, sd]")
        mean, sd = (number(v, None, None) for v in value)
        if sd < 0:
            raise Invalid(f"the sd in [mean, sd] must be >= 0, got {sd:g}")
        return Param(mean, sd)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"must be a number or [mean, sd], got {type_name(value)}")
    return Param(number(value, None, None))


def _members(value: object) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise Invalid("must be a non-empty array of patient numbers (1-based)")
    members = tuple(integer(v, 1, None) for v in value)
    if len(set(members)) != len(members):
        raise Invalid("names a patient twice")
    return members


def _day_range(value: object) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise Invalid("must be [first, last] (days of the run, 0-based)")
    first, last = (integer(v, 0, None) for v in value)
    if last < first:
        raise Invalid(f"last day {last} is before first day {first}")
    return first, last


def _hour_range(value: object) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise Invalid("must be [from, to] (hours of the day, 0..24)")
    first, last = (number(v, 0, 24) for v in value)
    if last <= first:
        raise Invalid(f"'to' ({last:g}) must be after 'from' ({first:g})")
    return first, last
