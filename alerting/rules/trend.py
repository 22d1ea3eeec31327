"""Rising blood pressure against the patient's own baseline.

Each usable reading becomes a residual: its value minus the patient's median for that part of
the day (morning, evening, other) over the baseline days, so a day with only morning readings
does not look like a rise because of the morning surge. Residuals are averaged per local day.
Two detectors, each requiring a clinically relevant size as well as statistical significance:

- a one-sided CUSUM over the monitoring days, in units of the patient's own day-to-day SD
  (1.4826 x MAD of the baseline days, floored): catches a step up within days;
- Mann-Kendall with a Theil-Sen slope over baseline and monitoring days: catches a drift.

Thresholds (rulesets/hypertension.toml) were chosen by simulation against the quality targets of
issue 7: >= 95 % of sustained rises of >= 15 mmHg detected within 7 days, <= 0.5 false alerts per
patient-month on stable patients (tests/unit/alerting/test_trend_rule.py keeps them honest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alerting.batch import BatchContext, RuleOutcome, utc
from alerting.decisions import AlertDecision, Severity
from alerting.rules._common import CLEAR, FIRED, evidence, no_decision, ratio, states
from alerting.stats import (
    cusum_rows,
    mann_kendall_rows,
    nanmedian_rows,
    robust_sd_rows,
    theil_sen_rows,
)
from alerting.summaries.blood_pressure import EVENING_HOURS, MORNING_HOURS
from alerting.text import number

RULE_ID = "bp.rising_trend"
#: A part of the day needs this many baseline days for its own median; else the overall one.
_MIN_PART_DAYS = 3


@dataclass(frozen=True, eq=False)
class _Detection:
    """One metric (systolic or diastolic) for every patient."""

    baseline: np.ndarray
    sigma: np.ndarray
    cusum: np.ndarray
    run_days: np.ndarray
    run_mean: np.ndarray
    run_first_column: np.ndarray
    cusum_fired: np.ndarray
    slope_per_day: np.ndarray
    p_value: np.ndarray
    trend_fired: np.ndarray


def evaluate(ctx: BatchContext) -> dict[str, RuleOutcome]:
    n, bp, par = ctx.n, ctx.bp, ctx.params
    state = states(n)
    if bp is None:
        return {RULE_ID: RuleOutcome(state, no_decision)}
    applies = par.applies(RULE_ID)
    base_days = np.nan_to_num(par.param(RULE_ID, "baseline_days")).astype(np.int64)
    mon_days = np.nan_to_num(par.param(RULE_ID, "monitor_days")).astype(np.int64)
    total = int((base_days + mon_days).max(initial=0))
    if total == 0:
        return {RULE_ID: RuleOutcome(state, no_decision)}
    column = np.arange(total)
    monitor = column[None, :] >= (total - mon_days)[:, None]
    baseline = ~monitor & (column[None, :] >= (total - mon_days - base_days)[:, None])

    rows = bp.for_statistics & applies[bp.cols.patient] & (bp.day > -total)
    p, day, hour = bp.cols.patient[rows], bp.day[rows], bp.hour[rows]
    part = np.full(len(p), 2, np.intp)
    part[(hour >= MORNING_HOURS.start) & (hour < MORNING_HOURS.stop)] = 0
    part[(hour >= EVENING_HOURS.start) & (hour < EVENING_HOURS.stop)] = 1
    # One bin per patient, part of the day and day: counts once, sums once per metric.
    bins = (p * 3 + part) * total + (day + total - 1)
    size = n * 3 * total
    counts = np.bincount(bins, minlength=size)[:size].reshape(n, 3, total).astype(float)

    detections = {}
    for name, values in (
        ("systolic", bp.cols.systolic[rows]),
        ("diastolic", bp.cols.diastolic[rows]),
    ):
        sums = np.bincount(bins, weights=values, minlength=size)[:size].reshape(n, 3, total)
        detections[name] = _detect(ctx, name, n, counts, sums, baseline, monitor)
    has = counts.sum(axis=1) > 0
    nb = (has & baseline).sum(axis=1)
    nm = (has & monitor).sum(axis=1)
    sufficient = (nb >= par.param(RULE_ID, "min_baseline_days")) & (nm > 0)
    fired = np.zeros(n, dtype=bool)
    for d in detections.values():
        fired |= d.cusum_fired | d.trend_fired
    state[sufficient] = np.where(fired, FIRED, CLEAR)[sufficient]
    s, d = detections["systolic"], detections["diastolic"]
    ctx.statistics.update(
        baseline_systolic=s.baseline,
        baseline_diastolic=d.baseline,
        trend_systolic_per_week=s.slope_per_day * 7,
        cusum_systolic=s.cusum,
    )

    def decide(i: int) -> AlertDecision:
        rule = par.rule(i, RULE_ID)
        lo, hi = bp.starts[i], bp.starts[i + 1]
        first_monitor_day = -int(mon_days[i]) + 1
        mine = np.flatnonzero(bp.for_statistics[lo:hi] & (bp.day[lo:hi] >= first_monitor_day)) + lo
        base_start = ctx.local_date(i, np.argmax(baseline[i]) - (total - 1))
        base_end = ctx.local_date(i, -int(mon_days[i]))
        parts = [
            f"Home blood pressure is rising against the patient's own baseline"
            f" (median {s.baseline[i]:.0f}/{d.baseline[i]:.0f} mmHg,"
            f" {base_start} to {base_end})."
        ]
        for name, det, unit_rise in (
            ("Systolic", s, rule["min_rise_systolic"]),
            ("Diastolic", d, rule["min_rise_diastolic"]),
        ):
            if det.cusum_fired[i]:
                since = ctx.local_date(i, det.run_first_column[i] - (total - 1))
                parts.append(
                    f"{name} daily means have been {det.run_mean[i]:+.0f} mmHg above it on"
                    f" {det.run_days[i]:.0f} days since {since} (CUSUM"
                    f" {det.cusum[i]:.1f} > {rule['cusum_h']:g} in units of the patient's"
                    f" day-to-day SD of {det.sigma[i]:.1f} mmHg; alert from {unit_rise:g} mmHg)."
                )
            if det.trend_fired[i]:
                parts.append(
                    f"{name} trend {det.slope_per_day[i] * 7:+.1f} mmHg/week over"
                    f" {total} days (Theil-Sen; Mann-Kendall p = {det.p_value[i]:.1g})."
                )
        stats = {}
        for name, det in (("systolic", s), ("diastolic", d)):
            stats[name] = {
                "baseline_mmhg": number(det.baseline[i]),
                "day_to_day_sd_mmhg": number(det.sigma[i], 2),
                "cusum": number(det.cusum[i], 2),
                "run_days": int(det.run_days[i]),
                "rise_mmhg": number(det.run_mean[i]),
                "slope_mmhg_per_week": number(det.slope_per_day[i] * 7, 2),
                "mann_kendall_p": None
                if np.isnan(det.p_value[i])
                else float(f"{det.p_value[i]:.3g}"),
                "step_detected": bool(det.cusum_fired[i]),
                "drift_detected": bool(det.trend_fired[i]),
            }
        return AlertDecision(
            rule_id=RULE_ID,
            rule_version=rule.version,
            severity=Severity.WARNING,
            title="Blood pressure rising above the patient's baseline",
            explanation=" ".join(parts),
            evidence=evidence(
                bp.cols.ids(mine), **stats, baseline_days=int(nb[i]), monitor_days=int(nm[i])
            ),
            observed_at=utc(bp.cols.time[mine[-1]]) if len(mine) else ctx.at_datetime,
            started_at=utc(bp.cols.time[mine[0]]) if len(mine) else None,
            programme=rule.programme,
        )

    return {RULE_ID: RuleOutcome(state, decide)}


def _detect(
    ctx: BatchContext,
    name: str,
    n: int,
    counts: np.ndarray,
    sums: np.ndarray,
    baseline: np.ndarray,
    monitor: np.ndarray,
) -> _Detection:
    """The two detectors for one metric; ``counts`` and ``sums`` are (patient, part, day)."""
    par = ctx.params
    # Baseline per part of the day: median of that part's daily means over the baseline days
    # (the overall daily median where a part has too few days of its own).
    base_all = nanmedian_rows(
        np.where(baseline, ratio(sums.sum(axis=1), counts.sum(axis=1)), np.nan)
    )
    base = np.empty((n, 3))
    for k in range(3):
        in_base = np.where(baseline, ratio(sums[:, k], counts[:, k]), np.nan)
        enough = (~np.isnan(in_base)).sum(axis=1) >= _MIN_PART_DAYS
        base[:, k] = np.where(enough, nanmedian_rows(in_base), base_all)
    # Daily mean of the residuals (reading - its part's baseline): sum(v - b) = sum - count b.
    residual_sums = (sums - counts * np.nan_to_num(base)[:, :, None]).sum(axis=1)
    daily = ratio(residual_sums, counts.sum(axis=1))
    floor = par.param(RULE_ID, f"sigma_floor_{name}")
    sigma = np.fmax(robust_sd_rows(np.where(baseline, daily, np.nan)), floor)
    cusum = cusum_rows(np.where(monitor, daily, np.nan), sigma, par.param(RULE_ID, "cusum_k"))
    min_rise = par.param(RULE_ID, f"min_rise_{name}")
    cusum_fired = (
        (cusum.s > par.param(RULE_ID, "cusum_h"))
        & (cusum.run_days >= par.param(RULE_ID, "min_run_days"))
        & (cusum.run_mean >= min_rise)
    )
    window = baseline | monitor
    series = np.where(window, daily, np.nan)
    _, count, p_value = mann_kendall_rows(series)
    slope = np.full(n, np.nan)
    candidate = (count >= par.param(RULE_ID, "trend_min_days")) & (
        p_value < par.param(RULE_ID, "trend_alpha")
    )
    if candidate.any():
        slope[candidate] = theil_sen_rows(series[candidate])
    span = window.sum(axis=1) - 1
    trend_fired = candidate & (slope * span >= min_rise)
    return _Detection(
        baseline=base_all,
        sigma=sigma,
        cusum=cusum.s,
        run_days=cusum.run_days,
        run_mean=cusum.run_mean,
        run_first_column=cusum.first_day,
        cusum_fired=cusum_fired,
        slope_per_day=slope,
        p_value=np.where(count >= 2, p_value, np.nan),
        trend_fired=trend_fired,
    )
