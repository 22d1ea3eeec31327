"""Adherence: fewer readings than the prescribed schedule, or none for days.

Every measurement attempt counts (a failed or implausible reading is still the patient
measuring); only duplicate deliveries and control-solution tests do not. The schedule is the
patient's own when the clinician set one, else the programme's default; a metric with no
schedule has no adherence rule. For a patient enrolled recently, the expected count is
prorated from ``enrolled_at``; the share is judged only once half the window has passed.
"""

from __future__ import annotations

import numpy as np

from alerting.batch import BatchContext, RuleOutcome, utc
from alerting.decisions import AlertDecision, RuleState, Severity
from alerting.localtime import DAY
from alerting.quality import Mark
from alerting.rules._common import (
    CLEAR,
    FIRED,
    evidence,
    first_last,
    no_decision,
    per_patient,
    states,
)
from alerting.text import number, time_text

METRICS = {
    "adherence.blood_pressure": ("blood_pressure_per_week", "bp", "blood-pressure"),
    "adherence.glucose": ("glucose_per_week", "glucose", "glucose"),
}


def evaluate(ctx: BatchContext) -> dict[str, RuleOutcome]:
    return {rule_id: _adherence(ctx, rule_id, *spec) for rule_id, spec in METRICS.items()}


def _adherence(
    ctx: BatchContext, rule_id: str, schedule: str, attr: str, words: str
) -> RuleOutcome:
    n, par = ctx.n, ctx.params
    prepared = getattr(ctx, attr)
    state = states(n)
    per_week = ctx.params.schedule(schedule)
    if prepared is None:
        return RuleOutcome(state, no_decision)
    cols, p = prepared.cols, prepared.cols.patient
    counted = (prepared.quality.marks & np.uint32(Mark.DUPLICATE | Mark.CONTROL_SOLUTION)) == 0
    window = par.param(rule_id, "window_days")
    in_window = counted & (cols.time > ctx.at - window[p] * DAY)
    count = per_patient(n, p[in_window])
    _, last, has_any = first_last(n, p[counted], cols.time[counted])
    enrolled = np.array(
        [np.nan if pr.enrolled_at is None else pr.enrolled_at.timestamp() for pr in ctx.profiles],
        dtype=float,
    )
    since_enrolment = (ctx.at - enrolled) / DAY
    effective_days = np.fmin(window, since_enrolment)  # NaN enrolment: the whole window
    expected = per_week * effective_days / 7
    silent_days = par.param(rule_id, "silent_days")
    quiet_for = np.where(has_any, (ctx.at - last) / DAY, since_enrolment)
    known = has_any | ~np.isnan(enrolled)
    silent = known & (quiet_for >= silent_days)
    judged = effective_days >= window / 2
    low = judged & (count < par.param(rule_id, "min_share_percent") / 100 * expected)
    scheduled = per_week > 0
    fired = scheduled & (silent | low)
    evaluable = scheduled & (known | judged)
    state[evaluable] = np.where(fired, FIRED, CLEAR)[evaluable]
    state[~scheduled] = np.int8(RuleState.NOT_APPLICABLE)

    def decide(i: int) -> AlertDecision:
        rule = par.rule(i, rule_id)
        lo, hi = prepared.starts[i], prepared.starts[i + 1]
        mine = np.flatnonzero(in_window[lo:hi]) + lo
        parts = []
        if silent[i]:
            if has_any[i]:
                parts.append(
                    f"No {words} readings for {quiet_for[i]:.0f} days (last"
                    f" {time_text(ctx.local(i, last[i]))})."
                )
            else:
                parts.append(f"No {words} readings since enrolment {quiet_for[i]:.0f} days ago.")
        share = 100 * count[i] / expected[i] if expected[i] > 0 else float("nan")
        parts.append(
            f"{count[i]:.0f} {words} readings in the last {effective_days[i]:.0f} days,"
            f" {share:.0f} % of the {expected[i]:.0f} prescribed ({per_week[i]:g} a week)."
        )
        parts.append("Check with the patient (and the device) before reading the trends.")
        return AlertDecision(
            rule_id=rule_id,
            rule_version=rule.version,
            severity=Severity.WARNING,
            title=f"Too few {words} readings",
            explanation=" ".join(parts),
            evidence=evidence(
                prepared.cols.ids(mine),
                readings=int(count[i]),
                expected=number(expected[i]),
                share_percent=number(share),
                per_week=float(per_week[i]),
                days_without_readings=number(quiet_for[i]),
                last_reading_at=utc(last[i]).isoformat() if has_any[i] else None,
            ),
            observed_at=utc(last[i]) if has_any[i] else ctx.at_datetime,
            started_at=utc(cols.time[mine[0]]) if len(mine) else None,
            programme=rule.programme,
        )

    return RuleOutcome(state, decide)
