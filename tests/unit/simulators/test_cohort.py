"""From a scenario to patients: the demo's three patients as the demo knows them, traits and
event picks seeded, device identities, clock faults and devices of nobody."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from device_simulators.cohort import build_cohort, demo_cohort, demo_start
from device_simulators.devices import ClockSpec
from device_simulators.scenario import load_scenario
from tests.unit.simulators.sim_support import START, cuff_patients, scenario

NOW = datetime(2026, 3, 12, 14, 5, tzinfo=UTC)


def test_demo_cohort_is_the_three_patients_the_demo_expects() -> None:
    start = demo_start(NOW)
    assert start == datetime(2026, 3, 9, 6, 58, tzinfo=UTC)
    cohort = demo_cohort(start)
    assert [(m.patient.patient_id, m.patient.display_name) for m in cohort] == [
        ("p-0001", "Anna Petrova"),
        ("p-0002", "Boris Ivanov"),
        ("p-0003", "Vera Sokolova"),
    ]
    assert [m.cuff.serial_number for m in cohort] == ["SIM-BP-0001", "SIM-BP-0002", "SIM-BP-0003"]
    assert {(m.cuff.manufacturer, m.cuff.model) for m in cohort} == {
        ("Homewatch Simulated", "BP-Sim 1")
    }
    # The first 20 simulated hours (what `homewatch demo --duration 20` covers): duplicates
    # morning and evening, and Vera's crisis with its re-measurement.
    end = start + timedelta(hours=20)
    taken = {m.patient.patient_id: list(m.patient.measurements(start, end)) for m in cohort}
    assert sum(map(len, taken.values())) == 14
    assert [(x.at.strftime("%H:%M"), x.event) for x in taken["p-0003"]] == [
        ("07:00", "scheduled"),
        ("07:02", "scheduled"),
        ("19:00", "scheduled"),
        ("19:02", "scheduled"),
        ("19:30", "hypertensive_crisis"),
        ("19:35", "crisis_remeasure"),
    ]
    crisis, again = taken["p-0003"][-2:]
    assert crisis.systolic > 180 and again.systolic > 180
    scheduled = [x for xs in taken.values() for x in xs if x.event == "scheduled"]
    assert all(x.systolic < 180 and x.diastolic < 110 for x in scheduled)


def test_measurements_go_on_forever_without_an_end() -> None:
    [first, *_] = demo_cohort(START)
    stream = first.patient.measurements(START)
    times = [next(stream).at for _ in range(4 * 400)]
    assert times[-1] - times[0] > timedelta(days=399)


def test_share_picks_that_many_patients_and_traits_follow_the_seed() -> None:
    body = (
        cuff_patients(10, "systolic = [140, 10], diastolic = [88, 5]")
        + """
[[patients.events]]
kind = "deterioration"
share = 0.3
days = [2, 5]
"""
    )
    s = scenario(body, days=10)
    cohort = build_cohort(s, START)
    deteriorating = [e for e in cohort.planned if e.kind == "deterioration"]
    assert len(deteriorating) == 3
    assert all(
        START + timedelta(days=2) <= e.start < START + timedelta(days=6) for e in deteriorating
    )
    assert [p.patient_id for p in cohort.patients] == [f"p-{i:04d}" for i in range(1, 11)]
    systolic = [p.blood_pressure.profile.systolic for p in cohort.patients if p.blood_pressure]
    assert len(set(systolic)) == 10
    again = build_cohort(s, START)
    assert [p.blood_pressure for p in again.patients] == [p.blood_pressure for p in cohort.patients]
    other = build_cohort(s, START, seed=99)
    assert [p.blood_pressure for p in other.patients] != [p.blood_pressure for p in cohort.patients]


def test_clock_faults_give_the_device_its_clock_and_unknown_devices_have_no_owner() -> None:
    body = (
        cuff_patients(2)
        + """
[[patients.events]]
kind = "clock_drift"
device = "cuff"
members = [1]
offset_minutes = -15
drift_ppm = 40

[[patients.events]]
kind = "clock_unset"
device = "cuff"
members = [2]

[[unknown_devices]]
type = "meter"
count = 2
manufacturer = "Acme"
"""
    )
    cohort = build_cohort(scenario(body), START)
    first, second = (p.device("cuff") for p in cohort.patients)
    assert first is not None and second is not None
    assert first.clock == ClockSpec(offset=timedelta(minutes=-15), drift_ppm=40.0)
    assert second.clock == ClockSpec(unset=True)
    assert [d.identity.name for d in cohort.unknown_devices] == ["GL-Other 01", "GL-Other 02"]
    assert [d.key for d in cohort.unknown_devices] == [
        "Acme/GL-X 9/OTH-GL-0001",
        "Acme/GL-X 9/OTH-GL-0002",
    ]
    assert len({d.key for d in cohort.devices}) == len(cohort.devices) == 4


def test_build_cohort_refuses_a_naive_start_and_a_negative_seed() -> None:
    s = load_scenario("demo")
    with pytest.raises(ValueError, match="timezone-aware"):
        build_cohort(s, START.replace(tzinfo=None))
    with pytest.raises(ValueError, match="seed"):
        build_cohort(s, START, seed=-1)
