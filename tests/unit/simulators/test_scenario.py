"""Scenario files: the shipped ones parse and build, and a bad file gets one clear line that
names the file, the place and the reason."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from device_simulators.cohort import build_cohort
from device_simulators.errors import ScenarioError, SimulationError
from device_simulators.scenario import (
    Param,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
)
from tests.unit.simulators.sim_support import START

GOOD = """
[scenario]
name = "t"
seed = 3
days = 10
timezone = "Europe/Moscow"

[[patients]]
kind = "k"
count = 2
conditions = ["I10", "E11.9"]
blood_pressure = { systolic = [140, 5], diastolic = 90 }
glucose = { fasting = 7 }

[[patients.devices]]
type = "cuff"
times = ["07:00", "20:00"]

[[patients.devices]]
type = "meter"
times = ["07:30"]
meals = ["fasting"]

[[patients.events]]
kind = "link_drop"
device = "meter"
share = 0.5
days = [1, 8]
"""


def test_builtin_scenarios_parse_and_build() -> None:
    assert {"demo", "mixed-50", "bench-1000"} <= set(builtin_scenarios())
    sizes = {}
    for name in builtin_scenarios():
        scenario = load_scenario(name)
        cohort = build_cohort(scenario, START)
        assert len(cohort.patients) == scenario.patient_count
        sizes[name] = (scenario.patient_count, {d.type for d in cohort.devices})
    assert sizes["demo"] == (3, {"cuff"})
    assert sizes["mixed-50"] == (50, {"cuff", "meter"})
    assert sizes["bench-1000"][0] == 1000


def test_mixed_cohort_has_every_kind_of_event_and_fault() -> None:
    cohort = build_cohort(load_scenario("mixed-50"), START)
    kinds = {e.kind for e in cohort.planned}
    assert kinds >= {
        "hypertensive_crisis",
        "deterioration",
        "medication_change",
        "irregular_pulse",
        "hypoglycaemia",
        "worsening_control",
        "link_drop",
        "resend",
        "low_battery",
        "out_of_range",
        "clock_drift",
        "clock_unset",
        "unknown_device",
    }
    models = {d.identity.model for d in cohort.devices}
    assert {"BP-Sim BE", "GL-Sim DT"} <= models  # quirky models from gateway/quirks.toml
    assert len(cohort.unknown_devices) == 3
    assert all(d.patient_id is None for d in cohort.unknown_devices)


def test_a_good_scenario_parses_into_typed_values() -> None:
    s = parse_scenario(GOOD, "good.toml")
    [group] = s.groups
    assert (s.name, s.seed, s.days, s.timezone.key) == ("t", 3, 10, "Europe/Moscow")
    assert group.blood_pressure is not None
    assert group.blood_pressure.systolic == Param(140, 5)
    assert group.blood_pressure.diastolic == Param(90)
    assert [d.type for d in group.devices] == ["cuff", "meter"]
    assert group.devices[0].schedule.times == (time(7), time(20))
    [event] = group.events
    assert (event.kind, event.share, event.days, event.params["device"]) == (
        "link_drop",
        0.5,
        (1, 8),
        "meter",
    )


BAD = [
    ("[scenario\nname = 1", "not valid TOML"),
    ("[[patients]]\nkind='k'", "a [scenario] table is required"),
    ('[scenario]\nname = "x"', "at least one [[patients]] group is required"),
    (
        '[scenario]\nname = "x"\ncolour = "red"\n[[patients]]\nkind = "k"',
        "scenario: unknown key: colour",
    ),
    (
        '[scenario]\nname = "x"\ntimezone = "Mars/Olympus"\n[[patients]]\nkind = "k"',
        "scenario.timezone: unknown time zone 'Mars/Olympus'",
    ),
    (
        '[scenario]\nname = "x"\ndays = 0\n[[patients]]\nkind = "k"',
        "scenario.days: 0 is out of range 1..3660",
    ),
    ('[scenario]\nname = 7\n[[patients]]\nkind = "k"', "scenario.name: must be a string"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_files_name_the_place_and_the_reason(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "bad.toml")
    assert str(caught.value).startswith("bad.toml")
    assert message in str(caught.value)
    assert isinstance(caught.value, SimulationError) and isinstance(caught.value, ValueError)


def variant(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


BAD_GROUPS = [
    (
        ('conditions = ["I10", "E11.9"]', 'conditions = ["hypertension"]'),
        "patients[0].conditions: 'hypertension' is not an ICD-10 code",
    ),
    (("count = 2", "count = 0"), "patients[0].count: 0 is out of range 1..1000000"),
    (("count = 2", 'count = 2\npatient_ids = ["a"]'), "patients[0].patient_ids: has 1 entries"),
    (("count = 2", 'count = 2\npatient_ids = ["a", "a"]'), "patient id 'a' is used twice"),
    (
        ("systolic = [140, 5]", "systolic = [140, 5, 1]"),
        "patients[0].blood_pressure.systolic: a varying value is [mean, sd]",
    ),
    (("systolic = [140, 5]", "systolic = [140, -5]"), "the sd in [mean, sd] must be >= 0"),
    (("systolic = [140, 5]", 'systolic = "high"'), "must be a number or [mean, sd]"),
    (("systolic = [140, 5]", "systolic = nan"), "systolic: must be a finite number"),
    (("systolic = [140, 5]", "systolic = [140, inf]"), "systolic: must be a finite number"),
    (("diastolic = 90", "diastolic = 150"), "mean diastolic must be 30 or more and below"),
    (("glucose = { fasting = 7 }\n", ""), "patients with a meter need a [patients.glucose]"),
    (
        ('times = ["07:00", "20:00"]', 'times = ["7 am"]'),
        "patients[0].devices[0].times: '7 am' is not a time of day HH:MM",
    ),
    (('times = ["07:00", "20:00"]', 'times = ["20:00", "07:00"]'), "increasing order"),
    (('type = "cuff"', 'type = "scale"'), "devices[0].type: 'scale' is not one of: cuff, meter"),
    (('type = "cuff"', 'type = "meter"'), "at most one device of each type"),
    (('meals = ["fasting"]', 'meals = ["brunch"]'), "unknown meal 'brunch'"),
    (('meals = ["fasting"]', 'meals = ["fasting", "bedtime"]'), "2 meal tags for 1 times"),
    (
        ('times = ["07:00", "20:00"]', 'times = ["07:00", "20:00"]\nmeals = ["fasting", "none"]'),
        "meal tags are for meters",
    ),
    (('kind = "link_drop"', 'kind = "crisis"'), "events[0].kind: 'crisis' is not one of"),
    (('device = "meter"', 'device = "scale"'), "events[0].device: 'scale' is not one of"),
    (('kind = "link_drop"', 'kind = "resend"'), "events[0].device: resend is a cuff fault"),
    (("days = [1, 8]", "days = [8, 1]"), "last day 1 is before first day 8"),
    (("days = [1, 8]", "days = [1, 8]\nday = 3"), "give either day or days, not both"),
    (("share = 0.5", "share = 0.5\nmembers = [1]"), "give either members or share, not both"),
    (("share = 0.5", "members = [3]"), "events[0].members: the group has 2 patients"),
    (("share = 0.5", "share = 1.5"), "events[0].share: 1.5 is out of range 0..1"),
    (("days = [1, 8]", "days = [1, 8]\nrecords = -1"), "records: -1 is out of range 0.."),
    (("days = [1, 8]", "days = [1, 8]\nslope = 2"), "events[0]: unknown key: slope"),
    (('kind = "link_drop"', 'kind = "clock_drift"'), "clock_drift applies from the start"),
    (
        ('kind = "link_drop"\ndevice = "meter"', 'kind = "medication_change"'),
        "events[0].effect_mmhg: is required",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD_GROUPS)
def test_bad_groups_devices_and_events_say_where(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ScenarioError, match=r"^bad\.toml: ") as caught:
        parse_scenario(variant(*change), "bad.toml")
    assert message in str(caught.value)


def test_a_cuff_event_needs_a_cuff_in_the_group() -> None:
    text = GOOD.replace('type = "cuff"\ntimes = ["07:00", "20:00"]\n\n[[patients.devices]]\n', "")
    text = text.replace('device = "meter"', 'device = "cuff"')
    with pytest.raises(ScenarioError, match=r"events\[0\]\.device: the group has no cuff"):
        parse_scenario(text, "bad.toml")


def test_load_scenario_from_a_file_or_by_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(GOOD, encoding="utf-8")
    assert load_scenario(path).source == str(path)
    assert load_scenario(str(path)).name == "t"
    assert load_scenario("demo").source == "demo (built-in)"
    with pytest.raises(ScenarioError, match="no such file, nor a built-in scenario"):
        load_scenario(tmp_path / "missing.toml")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "binary.toml")
