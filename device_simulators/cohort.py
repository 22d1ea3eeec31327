"""From a scenario to virtual patients with devices, traits and planned events.

``build_cohort(scenario, start)`` draws every patient's traits (baseline pressure, fasting
glucose...) from the group's distributions, names their devices, picks who gets each event and
when, and resolves day/time to instants in the scenario's time zone. Randomness is seeded from
the scenario seed: per patient (its ordinal in the cohort) for traits and per group event for
the picks, so the same seed gives the same cohort.

``demo_cohort`` is the demo's three patients (the ``demo`` scenario), as the demo and the
``sim run`` default use them: a hypertension programme, each patient with a cuff; one is well
controlled, one runs high, one has a hypertensive crisis on the first evening and re-measures
5 minutes later, as the guideline asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np

from device_simulators.bp_cuff import CuffIdentity
from device_simulators.devices import ClockSpec, DeviceFault, DeviceSpec
from device_simulators.patients import VirtualPatient
from device_simulators.peripheral import PeripheralIdentity
from device_simulators.physiology import (
    BloodPressureModel,
    BloodPressureProfile,
    Crisis,
    Deterioration,
    GlucoseModel,
    GlucoseProfile,
    Hypoglycaemia,
    IrregularPulse,
    MedicationChange,
    WorseningControl,
)
from device_simulators.scenario import (
    CLOCK_FAULTS,
    DeviceUse,
    EventSpec,
    Param,
    PatientGroup,
    Scenario,
    load_scenario,
)
from device_simulators.truth import TruthEvent

MANUFACTURER = "Homewatch Simulated"
MODEL = "BP-Sim 1"
#: Name and serial-number prefixes per device type (the patient's ordinal follows).
_NAMES = {"cuff": ("BP-Sim", "SIM-BP"), "meter": ("GL-Sim", "SIM-GL")}
_UNKNOWN_NAMES = {"cuff": ("BP-Other", "OTH-BP"), "meter": ("GL-Other", "OTH-GL")}
#: Seed layout: [seed, _TRAITS, ordinal] per patient; [seed, _EVENTS, group, event] per event.
_TRAITS, _EVENTS = 2, 1
#: Clinically meaningful floors/ceilings for drawn event values.
MIN_CRISIS_SYSTOLIC = 185.0
HYPO_NADIR_RANGE = (1.8, 3.8)


@dataclass(frozen=True, slots=True)
class CohortMember:
    """A patient and their cuff (the demo's view of a patient)."""

    patient: VirtualPatient
    cuff: CuffIdentity


@dataclass(frozen=True)
class Cohort:
    """The patients of a scenario from ``start``, with the devices nobody owns and the planned
    events (clinical episodes and device faults, as ground truth)."""

    scenario: Scenario
    start: datetime
    seed: int
    patients: tuple[VirtualPatient, ...]
    unknown_devices: tuple[DeviceSpec, ...] = ()
    planned: tuple[TruthEvent, ...] = ()

    @property
    def devices(self) -> tuple[DeviceSpec, ...]:
        return tuple(d for p in self.patients for d in p.devices) + self.unknown_devices

    def members(self) -> list[CohortMember]:
        """Patients with a cuff, with its identity (the demo's view)."""
        return [
            CohortMember(p, cuff.identity)
            for p in self.patients
            if (cuff := p.device("cuff")) is not None
        ]


def demo_start(now: datetime, days_back: int = 3) -> datetime:
    """Where the demo's virtual clock starts: a few days ago, just before the morning readings."""
    day = (now - timedelta(days=days_back)).date()
    return datetime.combine(day, time(6, 58), now.tzinfo)


def demo_cohort(start: datetime, seed: int = 7) -> list[CohortMember]:
    """The demo's three patients with their cuffs (the built-in ``demo`` scenario)."""
    return build_cohort(load_scenario("demo"), start, seed).members()


# --- building ------------------------------------------------------------------------------------


@dataclass
class _Draft:
    """A patient being built: what the scenario gives plus the events picked for them."""

    patient_id: str
    name: str
    ordinal: int
    group: PatientGroup
    bp: BloodPressureProfile | None
    glucose: GlucoseProfile | None
    devices: dict[str, DeviceSpec]
    crises: list[Crisis] = field(default_factory=list)
    deteriorations: list[Deterioration] = field(default_factory=list)
    medication: list[MedicationChange] = field(default_factory=list)
    irregular: list[IrregularPulse] = field(default_factory=list)
    hypos: list[Hypoglycaemia] = field(default_factory=list)
    worsening: list[WorseningControl] = field(default_factory=list)
    faults: dict[str, list[DeviceFault]] = field(default_factory=dict)


def build_cohort(scenario: Scenario, start: datetime, seed: int | None = None) -> Cohort:
    """The scenario's patients from ``start`` (aware); ``seed`` overrides the scenario's."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    seed = scenario.seed if seed is None else seed
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    builder = _Builder(scenario, start, seed)
    return builder.build()


class _Builder:
    def __init__(self, scenario: Scenario, start: datetime, seed: int) -> None:
        self.scenario = scenario
        self.start = start
        self.seed = seed
        self.tz = scenario.timezone
        self.day0: date = start.astimezone(self.tz).date()
        self.planned: list[TruthEvent] = []

    def build(self) -> Cohort:
        ordinal = 0
        patients: list[VirtualPatient] = []
        for gi, group in enumerate(self.scenario.groups):
            drafts = []
            for k in range(group.count):
                ordinal += 1
                drafts.append(self.draft(group, k, ordinal))
            for ei, event in enumerate(group.events):
                self.plan(event, drafts, np.random.default_rng([self.seed, _EVENTS, gi, ei]))
            patients.extend(self.finish(d) for d in drafts)
        unknown = self.unknown_devices()
        planned = tuple(sorted(self.planned, key=lambda e: (e.start, e.patient_id or "", e.kind)))
        return Cohort(self.scenario, self.start, self.seed, tuple(patients), unknown, planned)

    def draft(self, group: PatientGroup, k: int, ordinal: int) -> _Draft:
        rng = np.random.default_rng([self.seed, _TRAITS, ordinal])
        patient_id = (
            group.patient_ids[k] if group.patient_ids else f"{self.scenario.id_prefix}{ordinal:04d}"
        )
        name = group.names[k] if group.names else f"Patient {ordinal:04d}"
        bp = glucose = None
        if (b := group.blood_pressure) is not None:
            systolic, diastolic, pulse = (
                b.systolic.draw(rng),
                b.diastolic.draw(rng),
                b.pulse.draw(rng),
            )
            bp = BloodPressureProfile(
                systolic=round(systolic, 1),
                diastolic=round(min(diastolic, systolic - 25), 1),
                pulse=round(min(max(pulse, 45.0), 110.0), 1),
                within_person_sd=b.within_person_sd,
                morning_surge=round(max(b.morning_surge.draw(rng), 0.0), 1),
                night_dip=b.night_dip,
                medication_effect=round(b.medication_effect.draw(rng), 1),
            )
        if (g := group.glucose) is not None:
            glucose = GlucoseProfile(
                fasting=round(min(max(g.fasting.draw(rng), 3.8), 20.0), 2),
                day_to_day_sd=g.day_to_day_sd,
                meal_rise=round(max(g.meal_rise.draw(rng), 0.0), 2),
                meal_times=g.meals,
                meal_jitter_minutes=g.meal_jitter_minutes,
                peak_minutes=g.peak_minutes,
                meter_cv=g.meter_cv,
            )
        devices = {d.type: self.device(d, patient_id, ordinal) for d in group.devices}
        return _Draft(patient_id, name, ordinal, group, bp, glucose, devices)

    def device(self, use: DeviceUse, patient_id: str, ordinal: int) -> DeviceSpec:
        name, serial = _NAMES[use.type]
        return DeviceSpec(
            type=use.type,
            identity=PeripheralIdentity(
                name=f"{name} {ordinal:04d}",
                manufacturer=use.manufacturer,
                model=use.model,
                serial_number=f"{serial}-{ordinal:04d}",
                firmware_revision=use.firmware,
            ),
            patient_id=patient_id,
            schedule=use.schedule,
            clock=ClockSpec() if use.clock else None,
            battery_level=use.battery,
            unit=use.unit,
            tag_probability=use.tag_probability,
            control_solution_every_days=use.control_solution_every_days,
        )

    # --- events ---------------------------------------------------------------------------------

    def plan(self, event: EventSpec, drafts: list[_Draft], rng: np.random.Generator) -> None:
        if event.members is not None:
            chosen = [drafts[m - 1] for m in event.members]
        else:
            picked = rng.choice(len(drafts), size=round(event.share * len(drafts)), replace=False)
            chosen = [drafts[i] for i in sorted(int(i) for i in picked)]
        for draft in chosen:
            for _ in range(event.count):
                at = self.when(event, rng)
                values = {
                    name: value.draw(rng) if isinstance(value, Param) else value
                    for name, value in event.params.items()
                }
                self.apply(draft, event.kind, at, values)

    def when(self, event: EventSpec, rng: np.random.Generator) -> datetime:
        """The event's instant: fixed day/time, or drawn (two numbers drawn either way)."""
        first, last = event.days or (0, self.scenario.days - 1)
        day_draw, hour_draw = int(rng.integers(first, last + 1)), float(rng.random())
        if event.kind in CLOCK_FAULTS:
            return self.start
        day = self.day0 + timedelta(days=event.day if event.day is not None else day_draw)
        if event.time_of_day is not None:
            return datetime.combine(day, event.time_of_day, self.tz)
        low, high = event.hours
        minutes = round((low + (high - low) * hour_draw) * 60)
        return datetime.combine(day, time(0), self.tz) + timedelta(minutes=minutes)

    def apply(self, d: _Draft, kind: str, at: datetime, v: dict[str, Any]) -> None:
        """Attach one resolved event to a patient and note it as planned truth."""
        pid = d.patient_id
        truth: dict[str, Any] = {}
        end: datetime | None = None
        device_key = None
        if kind == "hypertensive_crisis":
            systolic = round(max(v["systolic"], MIN_CRISIS_SYSTOLIC))
            diastolic = round(min(v["diastolic"], systolic - 40))
            crisis = Crisis(at, systolic, diastolic, timedelta(minutes=v["remeasure_minutes"]))
            d.crises.append(crisis)
            end = crisis.remeasure_at
            truth = {
                "systolic": systolic,
                "diastolic": diastolic,
                "remeasure_at": crisis.remeasure_at.astimezone(UTC).isoformat(),
            }
        elif kind == "deterioration":
            slope = round(v["slope_mmhg_per_day"], 2)
            det = Deterioration(at, slope, v["duration_days"])
            d.deteriorations.append(det)
            end = det.end
            truth = {
                "slope_mmhg_per_day": slope,
                "total_mmhg": round(slope * det.days, 1),
                "baseline_systolic": d.bp.systolic if d.bp else None,
            }
        elif kind == "medication_change":
            effect = round(v["effect_mmhg"], 1)
            d.medication.append(MedicationChange(at, effect, v["onset_days"]))
            end = at + timedelta(days=v["onset_days"])
            truth = {"effect_mmhg": effect}
        elif kind == "irregular_pulse":
            end = at + timedelta(days=v["duration_days"])
            d.irregular.append(IrregularPulse(at, end, v["share_of_readings"]))
            truth = {"share_of_readings": v["share_of_readings"]}
        elif kind == "hypoglycaemia":
            nadir = round(min(max(v["nadir"], HYPO_NADIR_RANGE[0]), HYPO_NADIR_RANGE[1]), 2)
            hypo = Hypoglycaemia(at, nadir, timedelta(minutes=v["duration_minutes"]))
            d.hypos.append(hypo)
            end = hypo.end
            truth = {
                "nadir_mmol_per_l": nadir,
                "measure_at": hypo.measure_at.astimezone(UTC).isoformat(),
                "recheck_at": hypo.recheck_at.astimezone(UTC).isoformat(),
            }
        elif kind == "worsening_control":
            per_day = round(v["fasting_per_day"], 3)
            w = WorseningControl(at, per_day, v["duration_days"], v["meal_rise_growth"])
            d.worsening.append(w)
            end = w.end
            truth = {
                "fasting_per_day": per_day,
                "total_mmol_per_l": round(per_day * w.days, 2),
                "baseline_fasting": d.glucose.fasting if d.glucose else None,
            }
        else:
            device_key, truth = self.fault(d, kind, at, v)
        category = "device" if device_key is not None else "clinical"
        self.planned.append(
            TruthEvent(
                kind,
                category,
                pid,
                at.astimezone(UTC),
                None if end is None else end.astimezone(UTC),
                device_key,
                truth,
            )
        )

    def fault(
        self, d: _Draft, kind: str, at: datetime, v: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        device = d.devices[v["device"]]
        if kind == "clock_drift":
            base = device.clock or ClockSpec()
            offset = round(v["offset_minutes"], 1)
            drift = round(v["drift_ppm"], 1)
            clock = replace(base, offset=timedelta(minutes=offset), drift_ppm=drift)
            d.devices[device.type] = replace(device, clock=clock)
            return device.key, {"offset_minutes": offset, "drift_ppm": drift}
        if kind == "clock_unset":
            d.devices[device.type] = replace(
                device, clock=replace(device.clock or ClockSpec(), unset=True)
            )
            return device.key, {"unset_since": "2000-01-01T00:00:00"}
        fault = DeviceFault(
            kind,  # type: ignore[arg-type]
            device.type,
            at,
            records=int(v.get("records", 1)),
            level=int(v.get("level", 10)),
        )
        d.faults.setdefault(device.type, []).append(fault)
        if kind == "low_battery":
            return device.key, {"level": fault.level}
        return device.key, {"records": fault.records}

    # --- the patient ------------------------------------------------------------------------------

    def finish(self, d: _Draft) -> VirtualPatient:
        g = d.group
        bp_model = glucose_model = None
        if d.bp is not None:
            bp_model = BloodPressureModel(
                d.bp, tuple(d.deteriorations), tuple(d.medication), tuple(d.irregular)
            )
        if d.glucose is not None:
            glucose_model = GlucoseModel(d.glucose, tuple(d.worsening), tuple(d.hypos))
        devices = tuple(
            replace(spec, faults=tuple(sorted(d.faults.get(t, []), key=lambda f: f.at)))
            for t, spec in d.devices.items()
        )
        return VirtualPatient(
            patient_id=d.patient_id,
            display_name=d.name,
            devices=devices,
            blood_pressure=bp_model,
            glucose=glucose_model,
            crises=tuple(sorted(d.crises, key=lambda c: c.at)),
            adherence=g.adherence,
            artefacts=g.artefacts,
            timezone=self.tz,
            kind=g.kind,
            programme=g.programme,
            conditions=g.conditions,
            seed=(self.seed, _TRAITS, d.ordinal),
        )

    def unknown_devices(self) -> tuple[DeviceSpec, ...]:
        devices = []
        number = 0
        for spec in self.scenario.unknown_devices:
            for _ in range(spec.count):
                number += 1
                name, serial = _UNKNOWN_NAMES[spec.type]
                device = DeviceSpec(
                    type=spec.type,
                    identity=PeripheralIdentity(
                        name=f"{name} {number:02d}",
                        manufacturer=spec.manufacturer,
                        model=spec.model,
                        serial_number=f"{serial}-{number:04d}",
                        firmware_revision="3.1",
                    ),
                    patient_id=None,
                )
                devices.append(device)
                self.planned.append(
                    TruthEvent(
                        "unknown_device",
                        "device",
                        None,
                        self.start.astimezone(UTC),
                        None,
                        device.key,
                        {"type": spec.type, "name": device.identity.name},
                    )
                )
        return tuple(devices)
