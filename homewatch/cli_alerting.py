"""``homewatch alerting``: the alert rules from the command line (backtests, for now).

Registered in ``homewatch/cli.py``; the heavy imports (numpy, the rules) happen inside the
commands, so ``homewatch --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.callback()
def alerting() -> None:
    """Alert rules: replay a history of readings to tune rules before switching them on."""


#: File suffixes of the formats the backtest reads.
_READINGS_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
_PROFILE_FORMATS = {".toml": "toml", ".json": "json"}


@app.command("backtest")
def backtest(
    readings: Annotated[
        Path,
        typer.Argument(
            help="Readings, CSV with a header or JSON lines (.csv, .jsonl): one reading per row;"
            " columns in alerting/backtest.py (measured_at with a UTC offset; systolic/diastolic"
            " or glucose; optional reading_id, patient_id, unit, flags, meal, ...).",
            show_default=False,
        ),
    ],
    profile: Annotated[
        Path | None,
        typer.Option(
            help="Patient profile(s), TOML or JSON: patient_id, ICD-10 conditions, timezone,"
            " targets, schedule (one profile, or a list under `patients`). Default: conditions"
            " from the kinds of reading (I10 for blood pressure, E11 for glucose), UTC.",
            show_default=False,
        ),
    ] = None,
    rules: Annotated[
        list[Path] | None,
        typer.Option(
            help="A rule-set file (TOML, as alerting/rulesets/*.toml) replacing the packaged"
            " programme of the same name; repeat for several.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Replay readings through the rules and print, as JSON, the summaries and every alert that
    would have been raised, with its times. Exit 2 on unreadable input."""
    from alerting import AlertingError, RuleCatalogue, load_ruleset_file
    from alerting.backtest import backtest as run
    from alerting.backtest_input import parse_profiles, parse_readings

    try:
        text = _read(readings)
        fmt = _READINGS_FORMATS.get(readings.suffix.lower()) or (
            "jsonl" if text.lstrip().startswith("{") else "csv"
        )
        rows = parse_readings(text, fmt)
        if not rows:
            raise _Usage(f"no readings in {readings}")
        profiles = None
        if profile is not None:
            profile_fmt = _PROFILE_FORMATS.get(profile.suffix.lower())
            if profile_fmt is None:
                raise _Usage(f"{profile}: a profile file is .toml or .json")
            profiles = parse_profiles(_read(profile), profile_fmt)
        catalogue = RuleCatalogue.packaged()
        if rules:
            catalogue = catalogue.with_rulesets(*(load_ruleset_file(path) for path in rules))
        report = run(rows, profiles, catalogue=catalogue)
    except (AlertingError, _Usage) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    report = {"readings_file": str(readings), **report}
    typer.echo(json.dumps(report, indent=2, ensure_ascii=False))


class _Usage(Exception):
    """A problem with the files given (not with their content)."""


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _Usage(f"cannot read {path}: {exc}") from exc
