"""Irregular pulse that recurs: a finding of its own (possible arrhythmia), not noise.

Cuffs flag an irregular pulse on single readings for many harmless reasons (an ectopic beat, a
movement); the same flag on several readings over more than one day is worth an ECG (RULES.md).
Every reading counts here, whatever its pressure values, except a duplicate delivery.
"""

from __future__ import annotations

import numpy as np

from alerting.batch import BatchContext, RuleOutcome, utc
from alerting.columns import BP_FLAGS, bit
from alerting.decisions import AlertDecision, Severity
from alerting.localtime import DAY
from alerting.quality import Mark
from alerting.rules._common import (
    CLEAR,
    FIRED,
    HOLD,
    evidence,
    no_decision,
    per_patient,
    per_patient_day,
    states,
)
from alerting.text import day_text

RULE_ID = "bp.irregular_pulse_recurrent"


def evaluate(ctx: BatchContext) -> dict[str, RuleOutcome]:
    n, bp, par = ctx.n, ctx.bp, ctx.params
    state = states(n)
    if bp is None:
        return {RULE_ID: RuleOutcome(state, no_decision)}
    cols, p = bp.cols, bp.cols.patient
    window = par.param(RULE_ID, "window_days")
    rows = ((bp.quality.marks & np.uint32(Mark.DUPLICATE)) == 0) & (
        cols.time > ctx.at - window[p] * DAY
    )
    flagged = rows & ((cols.flags & bit("irregular_pulse", BP_FLAGS)) != 0)
    total = per_patient(n, p[rows])
    count = per_patient(n, p[flagged])
    span = int(np.nanmax(window, initial=0)) + 1
    days = (per_patient_day(n, span, p[flagged], bp.day[flagged]) > 0).sum(axis=1)
    min_count = par.param(RULE_ID, "min_flagged_readings")
    fired = (count >= min_count) & (days >= par.param(RULE_ID, "min_flagged_days"))
    state[:] = np.where(
        fired, FIRED, np.where(count > 0, HOLD, np.where(total >= min_count, CLEAR, state))
    )

    def decide(i: int) -> AlertDecision:
        rule = par.rule(i, RULE_ID)
        lo, hi = bp.starts[i], bp.starts[i + 1]
        mine = np.flatnonzero(flagged[lo:hi]) + lo
        first, last = ctx.local(i, cols.time[mine[0]]), ctx.local(i, cols.time[mine[-1]])
        share = 100 * count[i] / total[i]
        return AlertDecision(
            rule_id=RULE_ID,
            rule_version=rule.version,
            severity=Severity.WARNING,
            title="Recurrent irregular pulse",
            explanation=(
                f"The cuff detected an irregular pulse on {count[i]:.0f} of {total[i]:.0f} readings"
                f" ({share:.0f} %) on {days[i]} different days between {day_text(first)} and"
                f" {day_text(last)}: possible arrhythmia (e.g. atrial fibrillation);"
                " consider an ECG."
            ),
            evidence=evidence(
                cols.ids(mine),
                flagged_readings=int(count[i]),
                readings=int(total[i]),
                flagged_days=int(days[i]),
                window_days=rule["window_days"],
            ),
            observed_at=utc(cols.time[mine[-1]]),
            started_at=utc(cols.time[mine[0]]),
            programme=rule.programme,
        )

    return {RULE_ID: RuleOutcome(state, decide)}
