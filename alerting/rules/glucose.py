"""Glucose window rules: hypoglycaemia frequency, time below range, variability (CV).

Definitions as in ``alerting.summaries.glucose`` (International Consensus on Time in Range;
ADA): a hypoglycaemia event is a run of readings below 3.9 mmol/L with no normal reading in
between and no gap over 15 minutes, level 2 if any of them is below 3.0. A "LO" reading counts
below 3.0; control-solution tests, failed and duplicate readings never count. With fingerstick
readings, "time" below range is the share of readings, and this says so.
"""

from __future__ import annotations

import numpy as np

from alerting.batch import BatchContext, PreparedGlucose, RuleOutcome, utc
from alerting.decisions import AlertDecision, Severity
from alerting.localtime import DAY
from alerting.rules._common import (
    CLEAR,
    FIRED,
    HOLD,
    evidence,
    no_decision,
    per_patient,
    ratio,
    states,
)
from alerting.summaries.glucose import HYPO_EVENT_GAP, HYPO_LEVEL_1, HYPO_LEVEL_2
from alerting.text import day_text, mmol, number

FREQUENCY = "glucose.hypo_frequency"
BELOW_RANGE = "glucose.time_below_range"
VARIABILITY = "glucose.variability"


def evaluate(ctx: BatchContext) -> dict[str, RuleOutcome]:
    return {
        FREQUENCY: _frequency(ctx),
        BELOW_RANGE: _below_range(ctx),
        VARIABILITY: _variability(ctx),
    }


def hypo_events(g: PreparedGlucose, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Among ``rows`` (a mask over the prepared readings): which rows start a hypo event, which
    rows start a level-2 event, and each low row's event number (-1 for other rows)."""
    idx = np.flatnonzero(rows & ~np.isnan(g.threshold_value))
    value, p, t = g.threshold_value[idx], g.cols.patient[idx], g.cols.time[idx]
    low = value < HYPO_LEVEL_1
    continues = np.zeros(len(idx), dtype=bool)
    continues[1:] = (
        low[:-1] & (p[1:] == p[:-1]) & (t[1:] - t[:-1] <= HYPO_EVENT_GAP.total_seconds())
    )
    start = low & ~continues
    event = np.where(low, np.cumsum(start) - 1, -1)
    severe_event = np.zeros(int(start.sum()), dtype=bool)
    severe_event[event[low & (value < HYPO_LEVEL_2)]] = True
    starts = np.zeros(len(g.cols), dtype=bool)
    starts[idx[start]] = True
    severe_starts = np.zeros(len(g.cols), dtype=bool)
    severe_starts[idx[start][severe_event]] = True
    events = np.full(len(g.cols), -1, np.int64)
    events[idx] = event
    return starts, severe_starts, events


def _window(ctx: BatchContext, rule_id: str) -> np.ndarray:
    g = ctx.glucose
    assert g is not None
    days = ctx.params.param(rule_id, "window_days")
    return g.cols.time > ctx.at - days[g.cols.patient] * DAY


def _frequency(ctx: BatchContext) -> RuleOutcome:
    n, g, par = ctx.n, ctx.glucose, ctx.params
    state = states(n)
    if g is None:
        return RuleOutcome(state, no_decision)
    rows = _window(ctx, FREQUENCY)
    starts, severe, events = hypo_events(g, rows)
    p = g.cols.patient
    count = per_patient(n, p[starts])
    severe_count = per_patient(n, p[severe])
    readings = per_patient(n, p[rows & ~np.isnan(g.threshold_value)])
    per_week = count * 7 / par.param(FREQUENCY, "window_days")
    fired = per_week > par.param(FREQUENCY, "events_per_week_max")
    state[readings > 0] = np.where(fired, FIRED, CLEAR)[readings > 0]
    ctx.statistics.update(hypo_events=count, hypo_level_2_events=severe_count)

    def decide(i: int) -> AlertDecision:
        rule = par.rule(i, FREQUENCY)
        lo, hi = g.starts[i], g.starts[i + 1]
        low_rows = np.flatnonzero(events[lo:hi] >= 0) + lo
        first_rows = np.flatnonzero(starts[lo:hi]) + lo
        lowest = float(np.min(g.threshold_value[low_rows]))
        high = severe_count[i] >= rule["level_2_events_for_high"]
        when = ", ".join(day_text(ctx.local(i, g.cols.time[r])) for r in first_rows)
        return AlertDecision(
            rule_id=FREQUENCY,
            rule_version=rule.version,
            severity=Severity.HIGH if high else Severity.WARNING,
            title="Frequent hypoglycaemia",
            explanation=(
                f"{count[i]:.0f} hypoglycaemia events (glucose below 3.9 mmol/L / 70 mg/dL) in the"
                f" last {rule['window_days']:g} days ({when}), {severe_count[i]:.0f} of them below"
                f" 3.0 mmol/L (54 mg/dL); lowest {mmol(lowest)}. More than"
                f" {rule['events_per_week_max']:g} a week is above"
                f" {rule.source_of('events_per_week_max')}: review treatment (insulin,"
                " sulfonylurea doses) and hypoglycaemia awareness."
            ),
            evidence=evidence(
                g.cols.ids(low_rows),
                events=int(count[i]),
                level_2_events=int(severe_count[i]),
                events_per_week=number(per_week[i], 2),
                lowest_mmol_l=number(lowest, 2),
                events_per_week_max=rule["events_per_week_max"],
            ),
            observed_at=utc(g.cols.time[low_rows[-1]]),
            started_at=utc(g.cols.time[low_rows[0]]),
            programme=rule.programme,
        )

    return RuleOutcome(state, decide)


def _below_range(ctx: BatchContext) -> RuleOutcome:
    n, g, par = ctx.n, ctx.glucose, ctx.params
    state = states(n)
    if g is None:
        return RuleOutcome(state, no_decision)
    value, p = g.threshold_value, g.cols.patient
    rows = _window(ctx, BELOW_RANGE) & ~np.isnan(value)
    with np.errstate(invalid="ignore"):
        low1, low2 = rows & (value < HYPO_LEVEL_1), rows & (value < HYPO_LEVEL_2)
    count, n1, n2 = per_patient(n, p[rows]), per_patient(n, p[low1]), per_patient(n, p[low2])
    share1, share2 = 100 * ratio(n1, count), 100 * ratio(n2, count)
    need = par.param(BELOW_RANGE, "min_low_readings")
    fired = ((share1 > par.param(BELOW_RANGE, "below_level_1_max_percent")) & (n1 >= need)) | (
        (share2 > par.param(BELOW_RANGE, "below_level_2_max_percent")) & (n2 >= need)
    )
    enough = count >= par.param(BELOW_RANGE, "min_readings")
    state[enough] = np.where(fired, FIRED, CLEAR)[enough]
    ctx.statistics.update(glucose_below_3_9_percent=share1, glucose_below_3_0_percent=share2)

    def decide(i: int) -> AlertDecision:
        rule = par.rule(i, BELOW_RANGE)
        lo, hi = g.starts[i], g.starts[i + 1]
        mine = np.flatnonzero(low1[lo:hi]) + lo
        first, last = ctx.local(i, g.cols.time[mine[0]]), ctx.local(i, g.cols.time[mine[-1]])
        return AlertDecision(
            rule_id=BELOW_RANGE,
            rule_version=rule.version,
            severity=Severity.WARNING,
            title="Too many readings below range",
            explanation=(
                f"{n1[i]:.0f} of {count[i]:.0f} glucose readings ({share1[i]:.0f} %) in the last"
                f" {rule['window_days']:g} days were below 3.9 mmol/L (70 mg/dL) and {n2[i]:.0f}"
                f" ({share2[i]:.0f} %) below 3.0 mmol/L (54 mg/dL), from {day_text(first)} to"
                f" {day_text(last)}; tolerated: under {rule['below_level_1_max_percent']:g} % and"
                f" {rule['below_level_2_max_percent']:g} %"
                f" ({rule.source_of('below_level_1_max_percent')})."
                " Shares of fingerstick readings, not of time."
            ),
            evidence=evidence(
                g.cols.ids(mine),
                readings=int(count[i]),
                below_3_9=int(n1[i]),
                below_3_0=int(n2[i]),
                below_3_9_percent=number(share1[i]),
                below_3_0_percent=number(share2[i]),
            ),
            observed_at=utc(g.cols.time[mine[-1]]),
            started_at=utc(g.cols.time[mine[0]]),
            programme=rule.programme,
        )

    return RuleOutcome(state, decide)


def _variability(ctx: BatchContext) -> RuleOutcome:
    n, g, par = ctx.n, ctx.glucose, ctx.params
    state = states(n)
    if g is None:
        return RuleOutcome(state, no_decision)
    v, p = g.cols.mmol_l, g.cols.patient
    rows = _window(ctx, VARIABILITY) & g.for_statistics & ~np.isnan(v)
    count = per_patient(n, p[rows])
    mean = ratio(per_patient(n, p[rows], v[rows]), count)
    deviation = v[rows] - mean[p[rows]]
    sd = np.sqrt(ratio(per_patient(n, p[rows], deviation**2), count - 1))
    cv = 100 * ratio(sd, mean)
    enough = count >= par.param(VARIABILITY, "min_readings")
    limit = par.param(VARIABILITY, "cv_max_percent")
    fired = cv > limit
    clear = cv <= limit - par.param(VARIABILITY, "clear_margin_percent")
    state[enough] = np.where(fired, FIRED, np.where(clear, CLEAR, HOLD))[enough]
    ctx.statistics.update(glucose_mean=mean, glucose_sd=sd, glucose_cv_percent=cv)

    def decide(i: int) -> AlertDecision:
        rule = par.rule(i, VARIABILITY)
        lo, hi = g.starts[i], g.starts[i + 1]
        mine = np.flatnonzero(rows[lo:hi]) + lo
        first, last = ctx.local(i, g.cols.time[mine[0]]), ctx.local(i, g.cols.time[mine[-1]])
        return AlertDecision(
            rule_id=VARIABILITY,
            rule_version=rule.version,
            severity=Severity.WARNING,
            title="High glucose variability",
            explanation=(
                f"Glucose coefficient of variation {cv[i]:.0f} % (SD {sd[i]:.1f} mmol/L around a"
                f" mean of {mmol(mean[i])}) over {count[i]:.0f} readings from {day_text(first)} to"
                f" {day_text(last)} is above {rule['cv_max_percent']:g} %"
                f" ({rule.source_of('cv_max_percent')}): unstable glycaemia and a higher"
                " hypoglycaemia risk."
            ),
            evidence=evidence(
                g.cols.ids(mine),
                readings=int(count[i]),
                mean_mmol_l=number(mean[i], 2),
                sd_mmol_l=number(sd[i], 2),
                cv_percent=number(cv[i]),
            ),
            observed_at=utc(g.cols.time[mine[-1]]),
            started_at=utc(g.cols.time[mine[0]]),
            programme=rule.programme,
        )

    return RuleOutcome(state, decide)
