"""The pure generator: a scenario and a window in, every reading and the ground truth out.

No radio, no clock, no I/O: the alerting quality bench and the MQTT fleet simulator use this
directly, and the radio runner plays the same output to live devices::

    run = generate(load_scenario("mixed-50"), start, days=30)
    for device_key, readings in run.readings.items(): ...   # per device, in time order
    run.truth                                               # TruthEvent, in start order
    run.counts[device_key].measurements                     # what each device produced
    run.write_truth(path)                                   # the JSON lines (truth.py)

Same scenario, seed and start give the same output, byte for byte.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO

from device_simulators.behaviour import NonAdherence
from device_simulators.cohort import Cohort, build_cohort
from device_simulators.devices import DeviceSpec
from device_simulators.patients import VirtualPatient
from device_simulators.readings import BloodPressureValues, SimulatedReading
from device_simulators.scenario import Scenario
from device_simulators.truth import DeviceCount, TruthEvent, write_lines

#: Reading labels that are behaviour events of their own in the truth.
_ARTEFACT_LABELS = ("movement", "loose_cuff", "failed")


@dataclass(frozen=True)
class Generated:
    """A generated run: readings per device (time order), truth events, device counts."""

    cohort: Cohort
    start: datetime
    end: datetime
    readings: Mapping[str, tuple[SimulatedReading, ...]]
    truth: tuple[TruthEvent, ...]
    counts: Mapping[str, DeviceCount]

    @property
    def scenario(self) -> Scenario:
        return self.cohort.scenario

    @property
    def seed(self) -> int:
        return self.cohort.seed

    @property
    def devices(self) -> tuple[DeviceSpec, ...]:
        return self.cohort.devices

    def all_readings(self) -> Iterator[SimulatedReading]:
        """Every reading of every device, merged in true-time order."""
        return heapq.merge(*self.readings.values(), key=lambda r: r.true_time)

    def reading_count(self) -> int:
        return sum(len(r) for r in self.readings.values())

    def truth_lines(self) -> Iterator[dict[str, Any]]:
        """The ground truth as JSON-ready objects (see ``device_simulators.truth``)."""
        yield {
            "type": "run",
            "scenario": self.scenario.name,
            "seed": self.seed,
            "timezone": self.scenario.timezone.key,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days": (self.end - self.start) / timedelta(days=1),
            "patients": len(self.cohort.patients),
            "devices": len(self.devices),
            "measurements": self.reading_count(),
        }
        for p in self.cohort.patients:
            yield {
                "type": "patient",
                "patient_id": p.patient_id,
                "name": p.display_name,
                "kind": p.kind,
                "programme": p.programme,
                "conditions": list(p.conditions),
                "devices": [d.key for d in p.devices],
            }
        for event in self.truth:
            yield event.to_json()
        for device in self.devices:
            yield self.counts[device.key].to_json()

    def write_truth(self, out: str | Path | TextIO) -> int:
        """Write the ground truth as JSON lines; returns the number of lines."""
        if isinstance(out, str | Path):
            with Path(out).open("w", encoding="utf-8") as f:
                return write_lines(f, self.truth_lines())
        return write_lines(out, self.truth_lines())


def generate(
    scenario: Scenario,
    start: datetime,
    days: float | None = None,
    *,
    seed: int | None = None,
) -> Generated:
    """Every reading taken in [start, start + days) and what really happened.

    ``days`` defaults to the scenario's; ``seed`` overrides the scenario's seed. ``start`` must
    be timezone-aware; day 0 of the scenario's events is its local date.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    days = scenario.days if days is None else days
    if not days > 0:
        raise ValueError(f"days must be > 0, got {days}")
    start = start.astimezone(UTC)
    end = start + timedelta(days=days)
    cohort = build_cohort(scenario, start, seed)
    readings: dict[str, list[SimulatedReading]] = {d.key: [] for d in cohort.devices}
    events = [e for e in cohort.planned if e.start < end]
    for patient in cohort.patients:
        statuses: list[tuple[datetime, NonAdherence | None]] = []
        for day in patient.days(start):
            midnight = datetime.combine(day.day, time(0), patient.timezone)
            if midnight >= end:
                break
            statuses.append((midnight, day.non_adherence))
            for reading in day.readings:
                if reading.true_time < end:
                    readings[reading.device_key].append(reading)
        events.extend(_non_adherence(patient, statuses, start, end))
    frozen = {key: tuple(r) for key, r in readings.items()}
    events.extend(_reading_events(frozen))
    episodes = _episode_readings(frozen)
    events = [_with_measured(e, episodes) for e in events]
    events.sort(key=lambda e: (e.start, e.patient_id or "", e.kind, e.device_key or ""))
    counts = {d.key: _count(d, frozen[d.key], end) for d in cohort.devices}
    return Generated(cohort, start, end, frozen, tuple(events), counts)


def _non_adherence(
    patient: VirtualPatient,
    statuses: list[tuple[datetime, NonAdherence | None]],
    start: datetime,
    end: datetime,
) -> Iterator[TruthEvent]:
    """One event per run of consecutive days without measuring, for the same reason."""
    run: list[tuple[datetime, NonAdherence]] = []

    def close() -> TruthEvent:
        first, reason = run[0]
        last_midnight = run[-1][0]
        next_midnight = datetime.combine(
            last_midnight.date() + timedelta(days=1), time(0), patient.timezone
        )
        period_start, period_end = max(first, start), min(next_midnight, end)
        days = round((period_end - period_start) / timedelta(days=1), 3)
        return TruthEvent(
            "non_adherence",
            "behaviour",
            patient.patient_id,
            period_start.astimezone(UTC),
            period_end.astimezone(UTC),
            None,
            {"reason": reason, "days": int(days) if days.is_integer() else days},
        )

    for midnight, status in statuses:
        if run and (status is None or status != run[-1][1]):
            yield close()
            run = []
        if status is not None:
            run.append((midnight, status))
    if run:
        yield close()


def _reading_events(readings: Mapping[str, tuple[SimulatedReading, ...]]) -> Iterator[TruthEvent]:
    """Behaviour visible on single readings: artefacts, double presses, control solution."""
    for device_readings in readings.values():
        for r in device_readings:
            artefacts = [label for label in _ARTEFACT_LABELS if label in r.labels]
            if artefacts:
                values: dict[str, Any] = {"artefacts": artefacts}
                if isinstance(r.values, BloodPressureValues):
                    values["true_systolic"] = r.values.true_systolic
                    values["true_diastolic"] = r.values.true_diastolic
                yield TruthEvent(
                    "artefact", "behaviour", r.patient_id, r.true_time, None, r.device_key, values
                )
            if r.event in ("duplicate_press", "control_solution"):
                yield TruthEvent(
                    r.event, "behaviour", r.patient_id, r.true_time, None, r.device_key, {}
                )


def _with_measured(
    event: TruthEvent, episodes: Mapping[tuple[str | None, str, datetime], str]
) -> TruthEvent:
    """Crises and hypos say whether the patient measured them (no device, or stopped: no)."""
    if event.kind == "hypertensive_crisis":
        at = event.start
    elif event.kind == "hypoglycaemia":
        at = datetime.fromisoformat(event.values["measure_at"])
    else:
        return event
    device_key = episodes.get((event.patient_id, event.kind, at.astimezone(UTC)))
    values = {**event.values, "measured": device_key is not None}
    return TruthEvent(
        event.kind, event.category, event.patient_id, event.start, event.end, device_key, values
    )


def _episode_readings(
    readings: Mapping[str, tuple[SimulatedReading, ...]],
) -> dict[tuple[str | None, str, datetime], str]:
    """(patient, episode kind, time) -> device key of the readings that episodes caused."""
    return {
        (r.patient_id, r.event, r.true_time): r.device_key
        for device_readings in readings.values()
        for r in device_readings
        if r.event in ("hypertensive_crisis", "hypoglycaemia")
    }


def _count(
    device: DeviceSpec, readings: tuple[SimulatedReading, ...], end: datetime
) -> DeviceCount:
    """What the device produced; a cuff's re-sends count what it had by then."""
    resent = 0
    for fault in device.faults:
        if fault.kind == "resend" and fault.at < end:
            before = sum(1 for r in readings if r.true_time <= fault.at)
            resent += min(fault.records, before)
    labels = Counter(label for r in readings for label in r.labels)
    return DeviceCount(
        device.key,
        device.type,
        device.patient_id,
        device.identity.serial_number,
        device.identity.model,
        len(readings),
        resent,
        dict(labels),
    )
