"""The ground-truth file: what really happened, line by line, and the measurement counts that
match the readings exactly."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from device_simulators.generate import generate
from device_simulators.scenario import load_scenario
from device_simulators.truth import read_truth
from tests.unit.simulators.sim_support import START, cuff_patients, meter_patients, run


def test_demo_truth_file(tmp_path: Path) -> None:
    generated = generate(load_scenario("demo"), datetime(2026, 3, 9, 6, 58, tzinfo=UTC))
    path = tmp_path / "truth.jsonl"
    lines = generated.write_truth(path)
    truth = read_truth(path)
    assert len(truth) == lines == 1 + 3 + 1 + 3
    head, *patients = (line for line in truth if line["type"] in ("run", "patient"))
    assert head == {
        "type": "run",
        "scenario": "demo",
        "seed": 7,
        "timezone": "UTC",
        "start": "2026-03-09T06:58:00+00:00",
        "end": "2026-03-12T06:58:00+00:00",
        "days": 3.0,
        "patients": 3,
        "devices": 3,
        "measurements": 38,
    }
    assert [p["patient_id"] for p in patients] == ["p-0001", "p-0002", "p-0003"]
    assert patients[2]["devices"] == ["Homewatch Simulated/BP-Sim 1/SIM-BP-0003"]
    [crisis] = [line for line in truth if line["type"] == "event"]
    assert crisis == {
        "type": "event",
        "kind": "hypertensive_crisis",
        "category": "clinical",
        "patient_id": "p-0003",
        "device_key": "Homewatch Simulated/BP-Sim 1/SIM-BP-0003",
        "start": "2026-03-09T19:30:00+00:00",
        "end": "2026-03-09T19:35:00+00:00",
        "values": {
            "systolic": 196,
            "diastolic": 124,
            "remeasure_at": "2026-03-09T19:35:00+00:00",
            "measured": True,
        },
    }
    devices = {line["patient_id"]: line for line in truth if line["type"] == "device"}
    assert devices["p-0003"]["measurements"] == 14
    assert devices["p-0003"]["labels"] == {
        "crisis_remeasure": 1,
        "hypertensive_crisis": 1,
        "scheduled": 12,
    }
    assert devices["p-0001"]["records"] == devices["p-0001"]["measurements"] == 12


def test_counts_match_the_readings_and_resends_count_what_the_cuff_had() -> None:
    body = (
        cuff_patients(2, duplicates=2, extra="artefacts = { duplicate_press = 0.1 }")
        + """
[[patients.events]]
kind = "resend"
members = [1]
day = 0
time = "07:01"
records = 5

[[patients.events]]
kind = "resend"
members = [2]
day = 3
time = "12:00"
records = 3
"""
    )
    generated = run(body, days=5)
    for key, readings in generated.readings.items():
        count = generated.counts[key]
        assert count.measurements == len(readings)
        assert count.labels == Counter(label for r in readings for label in r.labels)
    first, second = (generated.counts[d.key] for d in generated.devices)
    assert first.resent == 1  # at 07:01 on day 0 the cuff held one reading
    assert second.resent == 3
    assert first.records == first.measurements + 1


def test_events_of_every_category_with_their_true_values(tmp_path: Path) -> None:
    body = (
        meter_patients(
            1,
            "fasting = 6.5",
            device_extra="control_solution_every_days = 2",
            extra="adherence = { skip_day = 0.2 }",
        )
        + """
[[patients.events]]
kind = "hypoglycaemia"
day = 2
time = "15:00"
nadir = 2.5

[[patients.events]]
kind = "worsening_control"
day = 4
time = "00:00"
fasting_per_day = 0.1
duration_days = 10

[[patients.events]]
kind = "out_of_range"
device = "meter"
day = 5
time = "12:00"
records = 2

[[patients.events]]
kind = "clock_unset"
device = "meter"
"""
    )
    generated = run(body, days=14)
    path = tmp_path / "t.jsonl"
    generated.write_truth(path)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    events = [line for line in read_truth(path) if line["type"] == "event"]
    by_kind: dict[str, list[dict]] = {}
    for e in events:
        by_kind.setdefault(e["kind"], []).append(e)
    assert {e["category"] for e in events} == {"clinical", "behaviour", "device"}
    [hypo] = by_kind["hypoglycaemia"]
    assert hypo["values"]["nadir_mmol_per_l"] == 2.5
    assert hypo["values"]["measured"] is True  # a skipped day does not stop a hypo reading
    assert hypo["start"] == "2026-03-04T15:00:00+00:00"
    assert hypo["end"] == "2026-03-04T15:45:00+00:00"
    [worse] = by_kind["worsening_control"]
    assert worse["values"]["total_mmol_per_l"] == pytest.approx(1.0)
    assert worse["end"] == "2026-03-16T00:00:00+00:00"
    [oor] = by_kind["out_of_range"]
    assert oor["values"] == {"records": 2} and oor["device_key"].endswith("SIM-GL-0001")
    [unset] = by_kind["clock_unset"]
    assert unset["start"] == START.isoformat()
    assert by_kind["control_solution"] and by_kind["non_adherence"]
    assert [e["start"] for e in events] == sorted(e["start"] for e in events)
    # The out-of-range fault hits the next two readings after 12:00 on day 5.
    readings = generated.readings[oor["device_key"]]
    hit = [r for r in readings if "out_of_range" in r.labels]
    assert len(hit) == 2 and all(r.true_time >= START + timedelta(days=5, hours=12) for r in hit)
    # An unset clock stamps from 2000-01-01 on.
    assert all(r.device_time.year == 2000 for r in readings)
    assert readings[0].device_time - datetime(2000, 1, 1) == readings[0].true_time - START


def test_a_reading_is_json_with_nan_as_null() -> None:
    body = cuff_patients(1, extra="artefacts = { loose_cuff = 1.0, loose_cuff_nan = 1.0 }")
    reading = next(run(body, days=1).all_readings())
    data = json.loads(json.dumps(reading.to_json(), allow_nan=False))
    assert data["values"]["systolic"] is None and data["values"]["status"]["cuff_too_loose"]
    assert data["labels"] == ["scheduled", "loose_cuff", "failed"]
    assert data["true_time"] == "2026-03-02T07:00:00+00:00"
    assert data["device_time"] == "2026-03-02T07:00:00"
