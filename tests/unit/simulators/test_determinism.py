"""The same scenario and seed give the same readings and ground truth, byte for byte; another
seed gives others; a shorter run is the start of a longer one."""

from __future__ import annotations

import io
import json
from datetime import timedelta

from device_simulators.generate import Generated, generate
from device_simulators.scenario import load_scenario
from tests.unit.simulators.sim_support import START


def dump(run: Generated) -> tuple[str, str]:
    truth = io.StringIO()
    run.write_truth(truth)
    readings = "\n".join(
        json.dumps(r.to_json(), sort_keys=True, allow_nan=False) for r in run.all_readings()
    )
    return readings, truth.getvalue()


def test_same_seed_gives_identical_readings_and_truth() -> None:
    scenario = load_scenario("mixed-50")
    first = dump(generate(scenario, START, 10))
    second = dump(generate(load_scenario("mixed-50"), START, 10))
    assert first == second
    assert first[0].count("\n") > 1000 and first[1].count('"type":"event"') > 50


def test_a_different_seed_gives_different_readings_and_truth() -> None:
    scenario = load_scenario("mixed-50")
    readings, truth = dump(generate(scenario, START, 10))
    other_readings, other_truth = dump(generate(scenario, START, 10, seed=scenario.seed + 1))
    assert readings != other_readings
    assert truth != other_truth
    # The cohort's shape is the scenario's, whatever the seed.
    assert other_truth.count('"type":"patient"') == truth.count('"type":"patient"') == 50


def test_a_shorter_run_is_the_start_of_a_longer_one() -> None:
    scenario = load_scenario("mixed-50")
    short = generate(scenario, START, 5)
    long = generate(scenario, START, 12)
    cut = START + timedelta(days=5)
    for key, readings in short.readings.items():
        assert readings == tuple(r for r in long.readings[key] if r.true_time < cut)
    assert [e for e in short.truth if e.kind != "non_adherence"] == [
        e for e in long.truth if e.start < cut and e.kind != "non_adherence"
    ]


def test_the_demo_is_the_same_three_patients_whatever_the_day() -> None:
    scenario = load_scenario("demo")
    a = generate(scenario, START, 3)
    b = generate(scenario, START + timedelta(days=40), 3)
    values_a = [(r.true_time - a.start, r.values) for r in a.all_readings()]
    values_b = [(r.true_time - b.start, r.values) for r in b.all_readings()]
    assert values_a == values_b
