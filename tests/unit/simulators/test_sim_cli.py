"""``homewatch sim generate`` and ``sim scenarios``: the pure generator from the command line,
and a clear one-line error (exit 2) for a bad scenario."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from device_simulators.scenario import load_scenario
from device_simulators.truth import read_truth
from homewatch.cli import app
from homewatch.simulation import simulated_start

runner = CliRunner()


def test_generate_writes_truth_and_readings(tmp_path: Path) -> None:
    truth, readings = tmp_path / "truth.jsonl", tmp_path / "readings.jsonl"
    result = runner.invoke(
        app,
        [
            "sim",
            "generate",
            "--scenario",
            "demo",
            "--days",
            "1",
            "--start",
            "2026-03-09",
            "--truth",
            str(truth),
            "--readings",
            str(readings),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["start"] == "2026-03-09T06:58:00+00:00"
    assert summary["measurements"] == 14
    assert summary["truth_lines"] == len(read_truth(truth))
    lines = readings.read_text().splitlines()
    assert len(lines) == summary["reading_lines"] == 14
    assert json.loads(lines[0])["true_time"] == "2026-03-09T07:00:00+00:00"


def test_a_bad_scenario_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[scenario]\nname = "x"\n[[patients]]\nkind = "k"\nmood = 1\n')
    result = runner.invoke(app, ["sim", "generate", "--scenario", str(bad)])
    assert result.exit_code == 2
    assert f"error: {bad}: patients[0]: unknown key: mood" in result.output
    result = runner.invoke(app, ["sim", "generate", "--start", "yesterday"])
    assert result.exit_code == 2 and "error:" in result.output


def test_scenarios_lists_the_built_in_ones() -> None:
    result = runner.invoke(app, ["sim", "scenarios"])
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines()]
    assert names == ["bench-1000", "demo", "mixed-50"]


def test_a_run_starts_days_ago_before_the_morning_and_ends_in_the_past() -> None:
    demo = load_scenario("demo")
    evening = datetime(2026, 3, 12, 20, 0, tzinfo=UTC)
    assert simulated_start(demo, 3, evening) == datetime(2026, 3, 9, 6, 58, tzinfo=UTC)
    early = datetime(2026, 3, 12, 5, 0, tzinfo=UTC)  # today's 06:58 is still ahead
    assert simulated_start(demo, 3, early) == datetime(2026, 3, 8, 6, 58, tzinfo=UTC)
    moscow = load_scenario("mixed-50")  # 06:58 in Moscow is 03:58 UTC
    assert simulated_start(moscow, 30, evening) == datetime(2026, 2, 10, 3, 58, tzinfo=UTC)
