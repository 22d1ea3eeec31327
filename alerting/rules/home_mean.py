"""Home blood-pressure protocol mean above the patient's target (ESH / Hypertension Canada).

The same protocol as ``alerting.summaries.blood_pressure``: readings of the last
``window_days``, the first local day with readings discarded (readings run high on day one),
at least ``min_readings`` readings on ``min_days`` days, or the mean is only reported. Spikes and
readings the cuff marked (movement, fit, position) are left out. Hysteresis: once above, the
condition is clear only when the mean is ``clear_margin`` below the target.
"""

from __future__ import annotations

import numpy as np

from alerting.batch import BatchContext, RuleOutcome, utc
from alerting.decisions import AlertDecision, Severity
from alerting.localtime import DAY
from alerting.quality import PULSE_NOT_USABLE
from alerting.rules._common import (
    CLEAR,
    FIRED,
    HOLD,
    evidence,
    first_last,
    no_decision,
    per_patient,
    ratio,
    states,
)
from alerting.summaries.blood_pressure import EVENING_HOURS, MORNING_HOURS
from alerting.text import day_text, number

RULE_ID = "bp.home_mean_above_target"


def evaluate(ctx: BatchContext) -> dict[str, RuleOutcome]:
    n, bp, par = ctx.n, ctx.bp, ctx.params
    state = states(n)
    if bp is None:
        return {RULE_ID: RuleOutcome(state, no_decision)}
    cols, p = bp.cols, bp.cols.patient
    window = par.param(RULE_ID, "window_days")
    rows = bp.for_statistics & (cols.time > ctx.at - window[p] * DAY)
    # The first local day with readings in the window is discarded, unless it is the only one.
    first_day, last_day, _ = first_last(n, p[rows], bp.day[rows])
    discard = last_day > first_day
    keep = rows & ~(discard[p] & (bp.day == first_day[p]))
    kp = p[keep]
    count = per_patient(n, kp)
    days = _distinct_days(n, kp, bp.day[keep])
    sys_ = ratio(per_patient(n, kp, cols.systolic[keep]), count)
    dia = ratio(per_patient(n, kp, cols.diastolic[keep]), count)
    pulse_ok = (
        keep & ~np.isnan(cols.pulse) & ((bp.quality.marks & np.uint32(PULSE_NOT_USABLE)) == 0)
    )
    pulse = ratio(per_patient(n, p[pulse_ok], cols.pulse[pulse_ok]), per_patient(n, p[pulse_ok]))
    parts = {}
    for name, hours in (("morning", MORNING_HOURS), ("evening", EVENING_HOURS)):
        m = keep & (bp.hour >= hours.start) & (bp.hour < hours.stop)
        c = per_patient(n, p[m])
        parts[name] = (
            ratio(per_patient(n, p[m], cols.systolic[m]), c),
            ratio(per_patient(n, p[m], cols.diastolic[m]), c),
        )

    target_s, target_d = (
        par.param(RULE_ID, "systolic_target"),
        par.param(RULE_ID, "diastolic_target"),
    )
    sufficient = (count >= par.param(RULE_ID, "min_readings")) & (
        days >= par.param(RULE_ID, "min_days")
    )
    above = (sys_ >= target_s) | (dia >= target_d)
    clear = (sys_ < target_s - par.param(RULE_ID, "clear_margin_systolic")) & (
        dia < target_d - par.param(RULE_ID, "clear_margin_diastolic")
    )
    state[sufficient] = np.where(above, FIRED, np.where(clear, CLEAR, HOLD))[sufficient]
    ctx.statistics.update(
        home_systolic_mean=sys_,
        home_diastolic_mean=dia,
        home_pulse_mean=pulse,
        home_readings=count,
        home_days=days,
    )

    def decide(i: int) -> AlertDecision:
        rule = par.rule(i, RULE_ID)
        mine = np.flatnonzero(keep[bp.starts[i] : bp.starts[i + 1]]) + bp.starts[i]
        first, last = ctx.local(i, cols.time[mine[0]]), ctx.local(i, cols.time[mine[-1]])
        target = f"{rule['systolic_target']:g}/{rule['diastolic_target']:g} mmHg"
        source = rule.source_of("systolic_target")
        if rule.source_of("diastolic_target") != source:
            source += f" (diastolic: {rule.source_of('diastolic_target')})"
        text = (
            f"Home blood-pressure mean {sys_[i]:.0f}/{dia[i]:.0f} mmHg over {count[i]:.0f} readings"
            f" on {days[i]:.0f} days ({day_text(first)} to {day_text(last)}"
            + (", first day discarded as the home protocol prescribes" if discard[i] else "")
            + f") is at or above the target of {target} ({source})."
        )
        (ms, md), (es, ed) = parts["morning"], parts["evening"]
        if not np.isnan(ms[i]) and not np.isnan(es[i]):
            text += f" Morning {ms[i]:.0f}/{md[i]:.0f}, evening {es[i]:.0f}/{ed[i]:.0f} mmHg."
        if not np.isnan(pulse[i]):
            text += f" Mean pulse {pulse[i]:.0f}/min."
        return AlertDecision(
            rule_id=RULE_ID,
            rule_version=rule.version,
            severity=Severity.WARNING,
            title="Home blood pressure above target",
            explanation=text,
            evidence=evidence(
                cols.ids(mine),
                systolic_mean_mmhg=number(sys_[i]),
                diastolic_mean_mmhg=number(dia[i]),
                pulse_mean_per_min=number(pulse[i]),
                morning_mmhg=[number(ms[i]), number(md[i])],
                evening_mmhg=[number(es[i]), number(ed[i])],
                readings=int(count[i]),
                days=int(days[i]),
                discarded_first_day=str(ctx.local_date(i, first_day[i])) if discard[i] else None,
                target_mmhg=[rule["systolic_target"], rule["diastolic_target"]],
                target_source=source,
            ),
            observed_at=utc(cols.time[mine[-1]]),
            started_at=utc(cols.time[mine[0]]),
            programme=rule.programme,
        )

    return {RULE_ID: RuleOutcome(state, decide)}


def _distinct_days(n: int, patient: np.ndarray, day: np.ndarray) -> np.ndarray:
    if not len(patient):
        return np.zeros(n)
    span = int(day.max() - day.min()) + 1
    flat = patient * span + (day - day.min())
    seen = np.zeros(n * span, dtype=bool)
    seen[flat] = True
    return seen.reshape(n, span).sum(axis=1).astype(float)
