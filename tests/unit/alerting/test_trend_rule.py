"""Rising blood pressure against the patient's own baseline, and the quality targets."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from alerting import (
    BloodPressureColumns,
    PatientProfile,
    RuleState,
    evaluate_batch,
    evaluate_patient,
)
from tests.unit.alerting.builders import DAY0, at_day, bp_series, history, profile

TREND = "bp.rising_trend"
WHO = profile("I10", enrolled_at=at_day(-60))


def trend_states(readings, first_day, last_day):
    """The rule's state at the end of each local day, as a daily batch would see it."""
    out = {}
    for day in range(first_day, last_day + 1):
        ev = evaluate_patient(WHO, history(readings), at=at_day(day))
        out[day] = (ev.states[TREND], ev.decisions)
    return out


def test_a_sustained_rise_of_15_mmhg_is_caught_within_days_and_explained():
    readings = bp_series(40, systolic=130, rise_from_day=32, rise=15, seed=5)
    states = trend_states(readings, 29, 39)
    assert all(states[d][0] is RuleState.CLEAR for d in range(29, 33))
    fired = [d for d in range(33, 40) if states[d][0] is RuleState.FIRED]
    assert fired and fired[0] <= 32 + 3
    [d] = [d for d in states[fired[0]][1] if d.rule_id == TREND]
    stats = d.evidence["statistics"]["systolic"]
    assert stats["step_detected"] and stats["rise_mmhg"] >= 10
    assert "rising against the patient's own baseline" in d.explanation
    first, last = (DAY0 + timedelta(days=fired[0] - k) for k in (28, 8))
    assert f"{first:%Y-%m-%d} to {last:%Y-%m-%d})" in d.explanation  # the baseline days
    assert "days since 2026-11-02 (CUSUM" in d.explanation  # day 32, the onset
    assert "Systolic daily means have been +" in d.explanation and "CUSUM" in d.explanation
    evidence_days = {int(r[1:].split("-")[0]) for r in d.evidence["reading_ids"]}
    assert evidence_days == set(range(fired[0] - 7, fired[0]))  # the monitoring days


def test_a_stable_patient_stays_quiet_for_two_months():
    readings = bp_series(70, systolic=138, diastolic=86, seed=9)
    states = trend_states(readings, 28, 70)
    assert {s for s, _ in states.values()} == {RuleState.CLEAR}


def test_a_slow_drift_is_caught_by_the_robust_slope():
    readings = bp_series(40, systolic=125, seed=2)
    day = {r.reading_id: int(r.reading_id[1:].split("-")[0]) for r in readings}
    drift = [  # +0.7/+0.35 mmHg a day: +20 mmHg systolic over the 28 days the rule looks at
        replace(
            r,
            systolic=r.systolic + 0.7 * day[r.reading_id],
            diastolic=r.diastolic + 0.35 * day[r.reading_id],
        )
        for r in readings
    ]
    ev = trend_states(drift, 40, 40)[40]
    assert ev[0] is RuleState.FIRED
    [d] = [d for d in ev[1] if d.rule_id == TREND]
    assert d.evidence["statistics"]["systolic"]["drift_detected"]
    assert d.evidence["statistics"]["systolic"]["slope_mmhg_per_week"] == pytest.approx(4.9, abs=1)
    assert "mmHg/week over 28 days (Theil-Sen; Mann-Kendall p = " in d.explanation


def test_mornings_only_are_not_a_rise():
    # A strong morning surge; for the last week the patient measures in the mornings only.
    readings = bp_series(35, systolic=128, morning_surge=30, seed=4)
    last_week, before = at_day(28), at_day(7)
    mornings_late = [r for r in readings if r.measured_at < last_week or r.measured_at.hour < 12]
    naive_rise = np.mean([r.systolic for r in mornings_late if r.measured_at >= last_week]) - (
        np.mean([r.systolic for r in readings if before <= r.measured_at < last_week])
    )
    assert naive_rise >= 10  # a plain daily mean would call this a rise
    assert trend_states(mornings_late, 35, 35)[35][0] is RuleState.CLEAR


def test_one_bad_day_is_not_a_sustained_rise():
    readings = bp_series(35, systolic=128, seed=6)
    bad_day = [
        replace(r, systolic=r.systolic + 25) if r.reading_id.startswith("r33-") else r
        for r in readings
    ]
    assert trend_states(bad_day, 34, 34)[34][0] is RuleState.CLEAR


def test_without_a_baseline_there_is_no_verdict():
    readings = bp_series(12, systolic=150, rise_from_day=8, rise=20)
    assert trend_states(readings, 12, 12)[12][0] is RuleState.INSUFFICIENT_DATA


def test_quality_targets_on_a_synthetic_cohort():
    """Issue 7: >= 95 % of sustained rises of >= 15 mmHg detected within 7 days; <= 0.5 false
    alerts per patient-month on stable patients. Synthetic patients with day-to-day variation
    on top of the reading noise, 15 % of sittings missed and 1 % spikes; evaluated daily."""
    rng = np.random.default_rng(2026)
    stable, rising, days = 240, 120, 56
    n = stable + rising
    onset = rng.integers(30, days - 7, n)
    rows = []
    for day in range(days):
        for hour in (7.0, 7 + 2 / 60, 19.0, 19 + 2 / 60):
            rows.append((day, hour))
    day_of = np.array([d for d, _ in rows])
    hour_of = np.array([h for _, h in rows])
    patient = np.repeat(np.arange(n), len(rows))
    day = np.tile(day_of, n)
    hour = np.tile(hour_of, n)
    base_s, base_d = rng.normal(132, 12, n), rng.normal(82, 8, n)
    day_s = rng.normal(0, 3, (n, days))
    rise = np.where((np.arange(n) >= stable)[:, None] & (np.arange(days) >= onset[:, None]), 15, 0)
    morning = hour < 12
    s = base_s[patient] + day_s[patient, day] + rise[patient, day] + 6 * morning
    s += rng.normal(0, 5, len(patient)) + np.where(rng.random(len(patient)) < 0.01, 35, 0)
    d = base_d[patient] + 0.7 * day_s[patient, day] + rise[patient, day] / 2 + 3 * morning
    d += rng.normal(0, 3.5, len(patient))
    keep = rng.random(len(patient)) > 0.15
    t0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    time = t0 + day * 86_400 + hour * 3600
    cols = BloodPressureColumns.from_arrays(
        patient[keep], time[keep], np.round(s[keep]), np.round(d[keep])
    )
    profiles = [PatientProfile(f"p{i}", ("I10",)) for i in range(n)]
    fired = np.zeros((n, days), dtype=bool)
    for ev_day in range(28, days):
        at = datetime.fromtimestamp(t0 + (ev_day + 1) * 86_400 - 3600, UTC)
        fired[:, ev_day] = evaluate_batch(profiles, at=at, blood_pressure=cols).states[TREND] == (
            RuleState.FIRED
        )
    watched = fired[:, 28:]
    episodes = watched[:, 0] + (watched[:, 1:] & ~watched[:, :-1]).sum(axis=1)
    months = (days - 28) / 30.4
    false_rate = episodes[:stable].sum() / (stable * months)
    detected = [fired[i, onset[i] : onset[i] + 7].any() for i in range(stable, n)]
    assert false_rate <= 0.5
    assert np.mean(detected) >= 0.95
