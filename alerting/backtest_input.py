"""The backtest's input: readings files (CSV or JSON lines) and profile files, parsed.

Readings: CSV (with a header) or JSON lines, one reading per row; column names (case-sensitive):

========================  ==================================================================
``measured_at``           required: ISO 8601 with a UTC offset (``2026-11-20T07:02:00+03:00``)
``kind``                  ``blood_pressure`` or ``glucose``; inferred from the value columns
``reading_id``            default ``row-<line>``
``patient_id``            default: the only profile given, else ``patient``
``systolic``,             mmHg (or kPa with ``unit = kPa``); empty = no value (a failed
``diastolic``, ``pulse``  measurement); pulse per minute
``glucose``               mmol/L (or ``unit = mg/dL``); empty = special value or failed
``unit``                  ``mmHg`` (default), ``kPa``, ``mmol/L`` (default), ``mg/dL``: values
                          are converted as the file declares, never guessed
``flags``                 cuff status names, ``;``-separated (``irregular_pulse;body_movement``)
``sensor_status``         meter annunciation names, ``;``-separated (``device_battery_low``)
``meal``                  ``preprandial``, ``postprandial``, ``fasting``, ``casual``, ``bedtime``
``control_solution``      ``true``/``false`` (default false)
``device_key``            the device, for duplicates and device health
``time_source``           ``device`` (default), ``device_corrected``, ``received``
``clock_status``          ``unknown`` (default), ``synchronised``, ``corrected``, ``unset``
``clock_offset_seconds``  the device clock's offset when the gateway read it
``battery_percent``       the device's battery level when the reading was taken
========================  ==================================================================

In JSON lines, lists may be JSON arrays and empty values ``null``. A row that cannot be read is
an ``InputError`` naming its line: nothing is skipped silently.
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerting.columns import MEALS
from alerting.errors import InputError, ProfileError
from alerting.observations import (
    CLOCK_STATUSES,
    TIME_SOURCES,
    BloodPressureObservation,
    GlucoseObservation,
)
from alerting.plausibility import MG_DL_PER_MMOL_L, MMHG_PER_KPA
from alerting.profiles import PatientProfile

#: The columns a readings file may have (anything else is an error: a typo is not ignored).
COLUMNS = frozenset(
    "measured_at kind reading_id patient_id systolic diastolic pulse glucose unit flags"
    " sensor_status meal control_solution device_key time_source clock_status"
    " clock_offset_seconds battery_percent".split()
)
Observation = BloodPressureObservation | GlucoseObservation


@dataclass(frozen=True, slots=True)
class ReplayReading:
    patient_id: str | None
    observation: Observation
    battery_percent: float | None
    line: int


def parse_readings(text: str, fmt: str) -> list[ReplayReading]:
    """Rows of a readings file: ``fmt`` is ``csv`` or ``jsonl``."""
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None:
            raise InputError("empty CSV file (a header row is required)")
        rows = ((row, reader.line_num) for row in reader)
    elif fmt == "jsonl":
        rows = (_json_row(line, n) for n, line in enumerate(text.splitlines(), 1) if line.strip())
    else:
        raise InputError(f"unknown readings format {fmt!r} (csv or jsonl)")
    return [_reading(row, line) for row, line in rows]


def parse_profiles(text: str, fmt: str) -> dict[str, PatientProfile]:
    """Profiles from a TOML or JSON document: one profile, or ``patients`` = a list of them."""
    try:
        data = tomllib.loads(text) if fmt == "toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ProfileError(f"cannot read profiles: {exc}") from exc
    if isinstance(data, Mapping) and "patients" in data:
        data = data["patients"]
    items = data if isinstance(data, list) else [data]
    profiles = {}
    for item in items:
        if not isinstance(item, Mapping):
            raise ProfileError(f"a profile must be a table, not {item!r}")
        profile = PatientProfile.from_mapping(item)
        profiles[profile.patient_id] = profile
    return profiles


def _json_row(line: str, n: int) -> tuple[dict[str, Any], int]:
    try:
        row = json.loads(line)
    except ValueError as exc:
        raise InputError(f"not JSON: {exc}", line=n) from None
    if not isinstance(row, dict):
        raise InputError("a reading must be a JSON object", line=n)
    return row, n


def _reading(raw: Mapping[str, Any], line: int) -> ReplayReading:
    row = {k: _blank(v) for k, v in raw.items() if k is not None}
    if None in raw:
        raise InputError("more values than columns", line=line)
    unknown = sorted(set(row) - COLUMNS)
    if unknown:
        raise InputError(f"unknown column(s) {', '.join(unknown)}", line=line)
    at = _time(row.get("measured_at"), line)
    kind = row.get("kind") or _infer_kind(row, line)
    unit = row.get("unit")
    common = {
        "reading_id": str(row.get("reading_id") or f"row-{line}"),
        "measured_at": at,
        "device_key": None if row.get("device_key") is None else str(row["device_key"]),
        "time_source": _choice(row, "time_source", TIME_SOURCES, "device", line),
        "clock_status": _choice(row, "clock_status", CLOCK_STATUSES, "unknown", line),
        "clock_offset_seconds": _float(row, "clock_offset_seconds", line),
    }
    if kind == "blood_pressure":
        if unit not in (None, "mmHg", "kPa"):
            raise InputError(f"blood-pressure unit {unit!r} (mmHg or kPa)", line=line)
        scale = MMHG_PER_KPA if unit == "kPa" else 1.0
        s, d = _float(row, "systolic", line), _float(row, "diastolic", line)
        observation: Observation = BloodPressureObservation(
            systolic=None if s is None else round(s * scale, 1),
            diastolic=None if d is None else round(d * scale, 1),
            pulse=_float(row, "pulse", line),
            flags=frozenset(_names(row.get("flags"))),
            **common,
        )
    elif kind == "glucose":
        if unit not in (None, "mmol/L", "mg/dL"):
            raise InputError(f"glucose unit {unit!r} (mmol/L or mg/dL)", line=line)
        g = _float(row, "glucose", line)
        meal = row.get("meal")
        if meal is not None and meal not in MEALS:
            raise InputError(f"meal {meal!r} (one of {', '.join(MEALS[1:])})", line=line)
        observation = GlucoseObservation(
            mmol_l=None if g is None else (g / MG_DL_PER_MMOL_L if unit == "mg/dL" else g),
            sensor_status=frozenset(_names(row.get("sensor_status"))),
            meal=meal,
            control_solution=_bool(row.get("control_solution"), line),
            **common,
        )
    else:
        raise InputError(f"kind {kind!r} (blood_pressure or glucose)", line=line)
    patient = row.get("patient_id")
    return ReplayReading(
        None if patient is None else str(patient),
        observation,
        _float(row, "battery_percent", line),
        line,
    )


def _blank(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _infer_kind(row: Mapping[str, Any], line: int) -> str:
    has_bp = any(row.get(k) is not None for k in ("systolic", "diastolic"))
    has_glucose = "glucose" in row
    if has_bp == has_glucose:
        raise InputError("say the kind (blood_pressure or glucose): cannot tell", line=line)
    return "blood_pressure" if has_bp else "glucose"


def _time(value: Any, line: int) -> datetime:
    if value is None:
        raise InputError("measured_at is required", line=line)
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"measured_at {value!r} is not an ISO 8601 time", line=line) from None
    if at.tzinfo is None:
        raise InputError(f"measured_at {value!r} needs a UTC offset (e.g. +03:00 or Z)", line=line)
    return at


def _float(row: Mapping[str, Any], key: str, line: int) -> float | None:
    value = row.get(key)
    if value is None:
        return None
    try:
        number_ = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{key} {value!r} is not a number", line=line) from None
    return None if number_ != number_ else number_  # NaN: no value


def _bool(value: Any, line: int) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise InputError(f"control_solution {value!r} is not true/false", line=line)


def _choice(
    row: Mapping[str, Any], key: str, allowed: Sequence[str], default: str, line: int
) -> str:
    value = row.get(key) or default
    if value not in allowed:
        raise InputError(f"{key} {value!r} (one of {', '.join(allowed)})", line=line)
    return str(value)


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v for v in str(value).replace("|", ";").replace(" ", ";").split(";") if v]
