"""``homewatch alerting backtest``: replay readings, report summaries and the alerts raised."""

import csv
import json
from dataclasses import replace
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from alerting import InputError
from alerting.backtest_input import parse_readings
from homewatch.cli_alerting import app
from tests.unit.alerting.builders import bp_series

RUNNER = CliRunner()
HEADER = ["reading_id", "patient_id", "measured_at", "systolic", "diastolic", "pulse", "flags"]


def write_csv(path, readings, patient="p1"):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for r in readings:
            flags = ";".join(sorted(r.flags))
            w.writerow(
                [
                    r.reading_id,
                    patient,
                    r.measured_at.isoformat(),
                    r.systolic,
                    r.diastolic,
                    r.pulse,
                    flags,
                ]
            )
    return path


def backtest(*args):
    result = RUNNER.invoke(app, ["backtest", *map(str, args)])
    return result, (json.loads(result.stdout) if result.exit_code == 0 else None)


def alerts(report, rule_id=None):
    return [a for p in report["patients"] for a in p["alerts"] if rule_id in (None, a["rule_id"])]


def test_a_stable_series_raises_nothing(tmp_path):
    path = write_csv(tmp_path / "stable.csv", bp_series(45, systolic=126, diastolic=78, seed=3))
    result, report = backtest(path)
    assert result.exit_code == 0, result.output
    assert report["totals"] == {"patients": 1, "readings": 180, "alerts": 0, "alerts_by_rule": {}}
    [patient] = report["patients"]
    mean = patient["summaries"]["home_bp_protocol_mean_last_7_days"]
    assert mean["sufficient"] and not mean["above_home_threshold_135_85"]
    assert patient["profile"]["source"].startswith("default") and patient["profile"][
        "programmes"
    ] == ["hypertension"]


def test_planted_events_are_found_with_their_times(tmp_path):
    readings = bp_series(45, systolic=126, diastolic=78, rise_from_day=35, rise=18, seed=3)
    # A crisis on the evening of day 20, re-measured 5 minutes later.
    planted = {"r20-e1": (196, 122, 0), "r20-e2": (191, 121, 3)}
    readings = [
        replace(
            r,
            systolic=planted[r.reading_id][0],
            diastolic=planted[r.reading_id][1],
            measured_at=r.measured_at + timedelta(minutes=planted[r.reading_id][2]),
        )
        if r.reading_id in planted
        else r
        for r in readings
    ]
    result, report = backtest(write_csv(tmp_path / "events.csv", readings))
    assert result.exit_code == 0, result.output
    [crisis_alert] = alerts(report, "bp.hypertensive_crisis")
    assert crisis_alert["severity"] == "urgent"
    assert crisis_alert["raised_at"] == "2026-10-21T16:00:00+00:00"  # the first crisis reading
    assert [h["severity"] for h in crisis_alert["history"]] == ["high", "urgent"]
    [trend] = alerts(report, "bp.rising_trend")
    assert "2026-11-05" <= trend["raised_at"] < "2026-11-12"  # within a week of the rise
    assert trend["first_evidence_at"] >= "2026-10-29"


def test_json_lines_with_glucose_units_and_a_profile(tmp_path):
    rows = [
        {
            "reading_id": "g1",
            "measured_at": "2026-11-02T03:10:00+03:00",
            "glucose": 46,
            "unit": "mg/dL",
        },
        {"reading_id": "g2", "measured_at": "2026-11-02T03:25:00+03:00", "glucose": 3.4},
        {
            "reading_id": "c1",
            "measured_at": "2026-11-02T09:00:00+03:00",
            "glucose": 2.2,
            "control_solution": True,
        },
    ]
    readings = tmp_path / "g.jsonl"
    readings.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    profile = tmp_path / "p.toml"
    profile.write_text('patient_id = "p-9"\nconditions = ["E11.9"]\ntimezone = "Europe/Moscow"\n')
    result, report = backtest(readings, "--profile", profile)
    assert result.exit_code == 0, result.output
    [patient] = report["patients"]
    assert patient["patient_id"] == "p-9" and patient["profile"]["programmes"] == [
        "diabetes_type_2"
    ]
    [hypo] = alerts(report, "glucose.hypo_level_2")
    assert hypo["severity"] == "urgent" and hypo["evidence"]["reading_ids"] == ["g1", "g2"]
    assert "2.6 mmol/L (46 mg/dL) at 2026-11-02 03:10 MSK" in hypo["explanation"]
    notes = {n["reading_id"]: n for n in patient["readings"]["quality_notes"]}
    assert notes["c1"]["marks"] == ["control_solution"] and notes["c1"]["excluded"]


def test_a_tuned_rule_set_changes_what_would_have_fired(tmp_path):
    readings = [r for r in bp_series(3, systolic=120, seed=1)]
    readings.append(
        type(readings[0])("high", readings[-1].measured_at + timedelta(hours=2), 176, 104, 80)
    )
    path = write_csv(tmp_path / "r.csv", readings)
    _, default = backtest(path)
    assert alerts(default, "bp.hypertensive_crisis") == []
    rules = tmp_path / "tuned.toml"
    rules.write_text(
        'programme = "hypertension"\nversion = 3\nconditions = ["I10"]\n'
        '[rules."bp.hypertensive_crisis"]\nversion = 2\nsystolic_above = 175\n'
        "diastolic_above = 110\nconfirm_min_gap_minutes = 3\nconfirm_window_minutes = 30\n"
        "clear_below_systolic = 160\nclear_below_diastolic = 100\n"
    )
    _, tuned = backtest(path, "--rules", rules)
    [alert] = alerts(tuned, "bp.hypertensive_crisis")
    assert alert["rule_version"] == 2 and alert["severity"] == "high"
    assert {"programme": "hypertension", "version": 3, "source": str(rules)} in tuned["rule_sets"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("measured_at,systolic,diastolic\n2026-11-01T07:00:00,120,80\n", "line 2: measured_at"),
        (
            "measured_at,systolc,diastolic\n2026-11-01T07:00:00Z,120,80\n",
            "unknown column(s) systolc",
        ),
        (
            "measured_at,systolic,diastolic\n2026-11-01T07:00:00Z,abc,80\n",
            "systolic 'abc' is not a number",
        ),
        ("measured_at,systolic,diastolic,unit\n2026-11-01T07:00:00Z,12,8,cmHg\n", "unit 'cmHg'"),
        ("measured_at,glucose,meal\n2026-11-01T07:00:00Z,5,brunch\n", "meal 'brunch'"),
        (
            "reading_id,measured_at,glucose\na,2026-11-01T07:00:00Z,5\na,2026-11-01T08:00:00Z,6\n",
            "reading ids used more than once: a",
        ),
        ("measured_at,glucose\n", "no readings"),
    ],
)
def test_bad_input_is_exit_2_with_the_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result, _ = backtest(path)
    assert result.exit_code == 2
    assert message in result.stderr


def test_missing_files_and_bad_profiles_are_exit_2(tmp_path):
    result, _ = backtest(tmp_path / "absent.csv")
    assert result.exit_code == 2 and "cannot read" in result.stderr
    readings = write_csv(tmp_path / "r.csv", bp_series(2))
    profile = tmp_path / "p.toml"
    profile.write_text('patient_id = "p1"\nconditions = ["high blood pressure"]\n')
    result, _ = backtest(readings, "--profile", profile)
    assert result.exit_code == 2 and "not an ICD-10 code" in result.stderr


def test_declared_units_are_converted_and_nothing_is_guessed():
    [kpa, mgdl, guessed] = parse_readings(
        "measured_at,systolic,diastolic,glucose,unit,kind\n"
        "2026-11-01T07:00:00Z,16,10.7,,kPa,blood_pressure\n"
        "2026-11-01T07:00:00Z,,,90,mg/dL,glucose\n"
        "2026-11-01T08:00:00Z,16,10.7,,,blood_pressure\n",
        "csv",
    )
    assert (kpa.observation.systolic, kpa.observation.diastolic) == (120.0, 80.3)
    assert mgdl.observation.mmol_l == pytest.approx(4.995, abs=1e-3)
    assert guessed.observation.systolic == 16  # flagged later as a likely kPa value, not converted
    with pytest.raises(InputError, match="line 2: not JSON"):
        parse_readings('{"measured_at": "2026-11-01T07:00:00Z", "glucose": 5}\n{oops\n', "jsonl")


def test_an_alert_whose_condition_cleared_resolves_itself_in_the_replay(tmp_path):
    readings = bp_series(12, systolic=124, diastolic=78, seed=2)
    readings.append(
        replace(
            readings[20],
            reading_id="crisis",
            systolic=188,
            diastolic=112,
            measured_at=readings[20].measured_at + timedelta(hours=3),
        )
    )
    _, report = backtest(write_csv(tmp_path / "r.csv", readings))
    [alert] = alerts(report, "bp.hypertensive_crisis")
    assert alert["severity"] == "high" and alert["status"] == "resolved"
    [event] = [h for h in alert["history"] if h["event"] == "auto_resolved"]
    # Clear from the next reading below 160/100 (evening of day 5), for 72 h: resolved at the
    # following day end (the default profile keeps UTC days).
    assert event["condition_clear_since"] == "2026-10-06T16:00:00+00:00"
    assert alert["resolved_at"] == "2026-10-10T00:00:00+00:00"
