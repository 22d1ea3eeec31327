"""Shared pieces of the simulator unit tests: small scenarios written inline.

(A plain module, not conftest.py, so that test modules can import it.)
"""

from __future__ import annotations

from datetime import UTC, datetime

from device_simulators.generate import Generated, generate
from device_simulators.readings import BloodPressureValues, GlucoseValues, SimulatedReading
from device_simulators.scenario import Scenario, parse_scenario

#: A Monday, midnight (so that the days of truth periods are whole).
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)

HEAD = """
[scenario]
name = "unit"
seed = 5
days = {days}
timezone = "UTC"
"""


def scenario(body: str, days: int = 14) -> Scenario:
    return parse_scenario(HEAD.format(days=days) + body, "unit.toml")


def run(body: str, days: int = 14, *, seed: int | None = None) -> Generated:
    return generate(scenario(body, days), START, seed=seed)


def bp(reading: SimulatedReading) -> BloodPressureValues:
    assert isinstance(reading.values, BloodPressureValues)
    return reading.values


def glucose(reading: SimulatedReading) -> GlucoseValues:
    assert isinstance(reading.values, GlucoseValues)
    return reading.values


def cuff_patients(
    count: int = 1,
    bp_table: str = "systolic = 140, diastolic = 88",
    *,
    times: str = '["07:00", "20:00"]',
    duplicates: int = 1,
    extra: str = "",
) -> str:
    return f"""
[[patients]]
kind = "hypertension"
count = {count}
conditions = ["I10"]
blood_pressure = {{ {bp_table} }}
{extra}
[[patients.devices]]
type = "cuff"
times = {times}
duplicates = {duplicates}
"""


def meter_patients(
    count: int = 1,
    glucose_table: str = "fasting = 7.0",
    *,
    times: str = '["07:00", "21:00"]',
    device_extra: str = "",
    extra: str = "",
) -> str:
    return f"""
[[patients]]
kind = "diabetes"
count = {count}
conditions = ["E11.9"]
glucose = {{ {glucose_table} }}
{extra}
[[patients.devices]]
type = "meter"
times = {times}
{device_extra}
"""
