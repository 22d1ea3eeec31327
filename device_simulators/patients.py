"""Virtual patients: physiology and behaviour turned into the readings their devices take.

A ``VirtualPatient`` is pure data (built by ``device_simulators.cohort`` from a scenario) and a
day-by-day simulation: each day it decides whether the patient measures (adherence), when
(schedule with jitter, morning and evening duplicates), what each reading shows (blood pressure
and glucose models in ``device_simulators.physiology``, artefacts, double presses, device
faults) and what the device's clock stamps. Episodes (a crisis, a hypoglycaemia) make the
patient measure outside the schedule, and re-measure as the guidelines ask.

Randomness: one ``numpy`` Generator per patient and concern (behaviour, blood pressure,
glucose), seeded from the scenario seed and the patient's ordinal, consumed day after day. So
the same seed gives the same readings, a shorter run is a prefix of a longer one, and the
readings do not depend on which other patients are in the cohort.

``Measurement`` is the plain blood-pressure reading the demo and the older tests use.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from device_simulators.behaviour import MOVEMENT_EXTRA_SD, Adherence, Artefacts, NonAdherence
from device_simulators.device_clock import DeviceClock
from device_simulators.devices import DeviceSpec, DeviceType
from device_simulators.physiology import (
    BloodPressureModel,
    BloodPressureSample,
    Crisis,
    GlucoseDay,
    GlucoseModel,
)
from device_simulators.readings import (
    METER_RANGE,
    BloodPressureValues,
    GlucoseValues,
    SimulatedReading,
    meter_value,
)
from device_simulators.sim_time import SimulationTime
from gateway.codec import BloodPressureMeasurement, MeasurementStatus
from gateway.codec.bp_layout import PulseRateRange

log = logging.getLogger(__name__)

UTC_ZONE = ZoneInfo("UTC")
#: Noise (SD, mmHg) of the readings during a crisis: the pressure is sustained, the cuff's own
#: error remains.
CRISIS_READING_SD = 2.0
#: A control-solution test: the solution's nominal level (mmol/L) and when it is done.
CONTROL_SOLUTION_LEVEL = 6.5
CONTROL_SOLUTION_HOURS = (10.0, 18.0)
#: Streams of random numbers per patient (the last element of the seed).
_BEHAVIOUR, _BLOOD_PRESSURE, _GLUCOSE = 1, 2, 3


@dataclass(frozen=True, slots=True)
class Measurement:
    """A blood-pressure reading as a cuff records it (whole mmHg; NaN for a failed one).

    ``at`` is when it was taken (aware; UTC) and, unless ``device_time`` says otherwise, the
    cuff's time stamp (its UTC wall time).
    """

    at: datetime
    systolic: float
    diastolic: float
    pulse: float
    event: str = "scheduled"
    status: MeasurementStatus | None = None
    device_time: datetime | None = None

    def encode(self) -> bytes:
        """The Blood Pressure Measurement a cuff would indicate (mmHg, time stamp, status)."""
        if math.isnan(self.systolic) or math.isnan(self.diastolic):
            mean_arterial = math.nan
        else:
            mean_arterial = round(self.diastolic + (self.systolic - self.diastolic) / 3)
        stamp = self.device_time or self.at.astimezone(UTC).replace(tzinfo=None)
        return bytes(
            BloodPressureMeasurement.from_values(
                self.systolic,
                self.diastolic,
                mean_arterial,
                time_stamp=stamp,
                pulse_rate=self.pulse,
                status=self.status or MeasurementStatus(),
            )
        )

    @classmethod
    def from_reading(cls, reading: SimulatedReading) -> Measurement:
        v = reading.values
        if not isinstance(v, BloodPressureValues):
            raise TypeError(f"{reading.device_key}: not a blood-pressure reading")
        return cls(
            reading.true_time,
            v.systolic,
            v.diastolic,
            v.pulse,
            reading.event,
            v.status,
            reading.device_time,
        )


@dataclass(frozen=True, slots=True)
class PatientDay:
    """One simulated day of a patient: whether they measured and the readings taken."""

    index: int
    day: date
    non_adherence: NonAdherence | None
    readings: tuple[SimulatedReading, ...]


@dataclass(frozen=True, slots=True)
class _Intent:
    """A reading the patient is about to take (before its values are drawn)."""

    at: datetime
    device: DeviceSpec
    label: str
    slot: int = -1
    crisis: Crisis | None = None
    remeasure: bool = False


@dataclass(frozen=True)
class VirtualPatient:
    """A virtual patient with their devices, physiology, behaviour and episodes.

    ``seed``: the entropy of this patient's random streams (scenario seed, patient ordinal).
    """

    patient_id: str
    display_name: str
    devices: tuple[DeviceSpec, ...] = ()
    blood_pressure: BloodPressureModel | None = None
    glucose: GlucoseModel | None = None
    crises: tuple[Crisis, ...] = ()
    adherence: Adherence = field(default_factory=Adherence)
    artefacts: Artefacts = field(default_factory=Artefacts)
    timezone: ZoneInfo = UTC_ZONE
    kind: str = ""
    programme: str | None = None
    conditions: tuple[str, ...] = ("I10",)
    seed: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        types = [d.type for d in self.devices]
        if len(set(types)) != len(types):
            raise ValueError(f"{self.patient_id}: at most one device of each type, got {types}")
        if "cuff" in types and self.blood_pressure is None:
            raise ValueError(f"{self.patient_id}: a cuff needs a blood-pressure model")
        if "meter" in types and self.glucose is None:
            raise ValueError(f"{self.patient_id}: a meter needs a glucose model")

    def device(self, device_type: DeviceType) -> DeviceSpec | None:
        return next((d for d in self.devices if d.type == device_type), None)

    # --- the simulation ---------------------------------------------------------------------

    def days(self, start: datetime) -> Iterator[PatientDay]:
        """Every day from ``start``'s local date on (forever), readings in time order.

        Day 0 is the local date of ``start``; its readings before ``start`` are dropped (they
        are still drawn, so the random streams do not depend on the start's time of day).
        Device clocks start at ``start``.
        """
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        run = _PatientRun(self, start)
        index = 0
        while True:
            yield run.day(index)
            index += 1

    def readings(self, start: datetime, end: datetime | None = None) -> Iterator[SimulatedReading]:
        """Every reading in [start, end) (forever without ``end``), in time order."""
        for day in self.days(start):
            midnight = datetime.combine(day.day, time(0), self.timezone)
            if end is not None and midnight >= end:
                return
            for reading in day.readings:
                if end is None or reading.true_time < end:
                    yield reading

    def measurements(self, start: datetime, end: datetime | None = None) -> Iterator[Measurement]:
        """The cuff's readings in [start, end) as plain ``Measurement`` (the demo's view)."""
        for reading in self.readings(start, end):
            if reading.device_type == "cuff":
                yield Measurement.from_reading(reading)


class _PatientRun:
    """The state of one patient's simulation from a start: random streams, device clocks and
    fault bookkeeping, advanced one day at a time."""

    def __init__(self, patient: VirtualPatient, start: datetime) -> None:
        self.p = patient
        self.start = start
        self.day0 = start.astimezone(patient.timezone).date()
        seed = list(patient.seed)
        self.rng_behaviour = np.random.default_rng([*seed, _BEHAVIOUR])
        self.rng_bp = np.random.default_rng([*seed, _BLOOD_PRESSURE])
        self.rng_glucose = np.random.default_rng([*seed, _GLUCOSE])
        self.time = SimulationTime(start)
        self.clocks: dict[str, DeviceClock] = {
            d.key: self.time.build_clock(d.clock, patient.timezone)
            for d in patient.devices
            if d.clock is not None
        }
        self.carried: list[SimulatedReading] = []
        self.out_of_range_left: dict[str, int] = {d.key: 0 for d in patient.devices}
        self.faults_seen: dict[str, int] = {d.key: 0 for d in patient.devices}

    def day(self, index: int) -> PatientDay:
        p = self.p
        day = self.day0 + timedelta(days=index)
        status = p.adherence.day_status(index, day, self.rng_behaviour)
        glucose_day = None
        if p.glucose is not None:
            glucose_day = p.glucose.day(day, p.timezone, self.rng_glucose)
        intents: list[_Intent] = []
        for device in p.devices:
            intents.extend(self._scheduled(device, day, status))
            if device.type == "meter":
                intents.extend(self._control_solution(device, day, status))
        if status != "stopped":
            intents.extend(self._episodes(day))
        intents = _apart(sorted(intents, key=lambda i: (i.at, p.devices.index(i.device), i.label)))
        readings, self.carried = self.carried, []
        for intent in intents:
            readings.extend(self._take(intent, glucose_day))
        # A reading after midnight (a re-measurement, a double press) belongs to the next day,
        # so that days, and the readings of a device, stay in time order.
        next_midnight = datetime.combine(day + timedelta(days=1), time(0), p.timezone)
        self.carried = [r for r in readings if r.true_time >= next_midnight]
        today = sorted((r for r in readings if r.true_time < next_midnight), key=_true_time)
        kept = tuple(r for r in today if r.true_time >= self.start)
        return PatientDay(index, day, status, kept)

    # --- what the patient means to do ---------------------------------------------------------

    def _scheduled(
        self, device: DeviceSpec, day: date, status: NonAdherence | None
    ) -> Iterator[_Intent]:
        if device.schedule is None:
            return
        sessions = device.schedule.sessions(day, self.p.timezone, self.rng_behaviour)
        skipped_slots = {
            slot
            for slot in range(len(device.schedule.times))
            if self.p.adherence.skips_session(self.rng_behaviour)
        }
        if status is not None:
            return
        for s in sessions:
            if s.slot not in skipped_slots:
                yield _Intent(s.at, device, "scheduled", slot=s.slot)

    def _control_solution(
        self, device: DeviceSpec, day: date, status: NonAdherence | None
    ) -> Iterator[_Intent]:
        every = device.control_solution_every_days
        draw, hour = self.rng_behaviour.random(2)
        if every is None or status is not None or draw >= 1.0 / every:
            return
        low, high = CONTROL_SOLUTION_HOURS
        minutes = round((low + (high - low) * float(hour)) * 60)
        at = datetime.combine(day, time(0), self.p.timezone) + timedelta(minutes=minutes)
        yield _Intent(at, device, "control_solution")

    def _episodes(self, day: date) -> Iterator[_Intent]:
        tz = self.p.timezone
        cuff, meter = self.p.device("cuff"), self.p.device("meter")
        if cuff is not None:
            for crisis in self.p.crises:
                if crisis.at.astimezone(tz).date() == day:
                    yield _Intent(crisis.at, cuff, "hypertensive_crisis", crisis=crisis)
                    yield _Intent(
                        crisis.remeasure_at, cuff, "crisis_remeasure", crisis=crisis, remeasure=True
                    )
        if meter is not None and self.p.glucose is not None:
            for hypo in self.p.glucose.hypos:
                if hypo.measure_at.astimezone(tz).date() == day:
                    yield _Intent(hypo.measure_at, meter, "hypoglycaemia")
                    yield _Intent(hypo.recheck_at, meter, "hypoglycaemia_recheck")

    # --- taking a reading ---------------------------------------------------------------------

    def _take(self, intent: _Intent, glucose_day: GlucoseDay | None) -> list[SimulatedReading]:
        device = intent.device
        if device.type == "cuff":
            return self._cuff_readings(intent)
        assert glucose_day is not None
        return [self._meter_reading(intent, glucose_day)]

    def _cuff_readings(self, intent: _Intent) -> list[SimulatedReading]:
        model = self.p.blood_pressure
        assert model is not None
        artefacts = self.p.artefacts.draw(self.rng_behaviour)
        if intent.crisis is not None:
            # A crisis: the patient sits still and measures with care; no artefacts.
            true = intent.crisis.true_values(intent.remeasure)
            sample = model.sample(
                intent.at,
                self._hour(intent.at),
                self.rng_bp,
                true_values=true,
                sd=CRISIS_READING_SD,
            )
            return [self._bp_reading(intent.device, intent.at, sample, (intent.label,))]
        extra = MOVEMENT_EXTRA_SD if artefacts.movement else 0.0
        sample = model.sample(intent.at, self._hour(intent.at), self.rng_bp, extra_sd=extra)
        labels = [intent.label]
        if artefacts.movement:
            labels.append("movement")
        if artefacts.loose_cuff:
            labels.append("loose_cuff")
        if artefacts.failed:
            labels.append("failed")
        first = self._bp_reading(
            intent.device,
            intent.at,
            sample,
            tuple(labels),
            movement=artefacts.movement,
            loose=artefacts.loose_cuff,
            failed=artefacts.failed,
        )
        if not artefacts.duplicate_press:
            return [first]
        at = intent.at + artefacts.duplicate_delay
        again = model.sample(at, self._hour(at), self.rng_bp)
        return [first, self._bp_reading(intent.device, at, again, ("duplicate_press",))]

    def _bp_reading(
        self,
        device: DeviceSpec,
        at: datetime,
        sample: BloodPressureSample,
        labels: tuple[str, ...],
        *,
        movement: bool = False,
        loose: bool = False,
        failed: bool = False,
    ) -> SimulatedReading:
        systolic, diastolic, pulse = sample.systolic, sample.diastolic, sample.pulse
        if failed:
            systolic = diastolic = pulse = math.nan
        status = MeasurementStatus(
            body_movement=movement,
            cuff_too_loose=loose,
            irregular_pulse=sample.irregular_pulse and not failed,
        )
        labels = labels + (("irregular_pulse",) if status.irregular_pulse else ())
        if self._out_of_range(device, at):
            # A faulty sensor: values no living patient has (plausibility must catch them).
            sys_draw, dia_draw, pulse_draw = self.rng_behaviour.random(3)
            systolic = float(301 + round(79 * float(sys_draw)))
            diastolic = float(20 + round(25 * float(dia_draw)))
            pulse = float(251 + round(49 * float(pulse_draw)))
            status = replace(status, pulse_rate_range=PulseRateRange.ABOVE)
            labels = (*labels, "out_of_range")
        values = BloodPressureValues(
            systolic,
            diastolic,
            pulse,
            status,
            sample.true_systolic,
            sample.true_diastolic,
        )
        return self._reading(device, at, values, labels)

    def _meter_reading(self, intent: _Intent, glucose_day: GlucoseDay) -> SimulatedReading:
        model = self.p.glucose
        assert model is not None
        device = intent.device
        tag_draw = self.rng_behaviour.random()
        labels = [intent.label]
        control = intent.label == "control_solution"
        true = CONTROL_SOLUTION_LEVEL if control else glucose_day.true_value(intent.at)
        shown = model.read(true, self.rng_glucose)
        meal = None
        if intent.slot >= 0 and device.schedule is not None:
            meal = device.schedule.meal(intent.slot)
            if meal is None or tag_draw >= device.tag_probability:
                meal = None
        if meal is not None:
            labels.append("tagged")
        battery_low = self._battery_low(device, intent.at)
        if battery_low:
            labels.append("low_battery")
        out_of_range = None
        if self._out_of_range(device, intent.at):
            shown, out_of_range = math.inf, "high"
            labels.append("out_of_range")
        value = meter_value(shown, device.unit)
        if value is None and out_of_range is None:
            out_of_range = "high" if shown > METER_RANGE[1] else "low"
            labels.append("meter_range")
        values = GlucoseValues(
            value,
            device.unit,
            round(true, 2),
            meal=meal,
            control_solution=control,
            out_of_range=out_of_range,
            battery_low=battery_low,
        )
        return self._reading(device, intent.at, values, tuple(labels))

    def _reading(
        self,
        device: DeviceSpec,
        at: datetime,
        values: BloodPressureValues | GlucoseValues,
        labels: tuple[str, ...],
    ) -> SimulatedReading:
        clock = self.clocks.get(device.key)
        if clock is None:
            stamp = at.astimezone(self.p.timezone).replace(tzinfo=None)
        else:
            stamp = self.time.device_time(clock, at)
        return SimulatedReading(
            patient_id=self.p.patient_id,
            device_key=device.key,
            device_type=device.type,
            kind="blood_pressure" if device.type == "cuff" else "glucose",
            true_time=at.astimezone(UTC),
            device_time=stamp.replace(microsecond=0),
            values=values,
            labels=labels,
        )

    # --- device faults ------------------------------------------------------------------------

    def _out_of_range(self, device: DeviceSpec, at: datetime) -> bool:
        """Whether this reading is out of range: each fault makes the next ``records`` so."""
        if not device.faults:
            return False
        due = [f for f in device.faults if f.kind == "out_of_range" and f.at <= at]
        fresh = due[self.faults_seen[device.key] :]
        self.faults_seen[device.key] = len(due)
        self.out_of_range_left[device.key] += sum(f.records for f in fresh)
        if self.out_of_range_left[device.key] <= 0:
            return False
        self.out_of_range_left[device.key] -= 1
        return True

    def _battery_low(self, device: DeviceSpec, at: datetime) -> bool:
        if not device.faults:
            return False
        return any(f.kind == "low_battery" and f.at <= at for f in device.faults)

    def _hour(self, at: datetime) -> float:
        local = at.astimezone(self.p.timezone)
        return local.hour + local.minute / 60 + local.second / 3600


def _true_time(reading: SimulatedReading) -> datetime:
    return reading.true_time


def _apart(intents: list[_Intent]) -> list[_Intent]:
    """No two readings of a device at the same moment: a device stamps whole seconds, and two
    readings with one stamp could be taken for one. The later one in order (a scheduled reading
    sorts after the episode that coincides with it) moves a minute on."""
    last: dict[str, datetime] = {}
    spaced = []
    for intent in intents:
        previous = last.get(intent.device.key)
        if previous is not None and intent.at <= previous:
            intent = replace(intent, at=previous + timedelta(minutes=1))
        last[intent.device.key] = intent.at
        spaced.append(intent)
    return spaced
