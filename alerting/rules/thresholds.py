"""Where the streaming threshold rules stand, for the lifecycle: is the condition clear, since when.

The crisis and level-2 hypo rules fire on each new reading (``alerting.stream``); here the batch
only tells an open alert's lifecycle whether the condition has cleared. Hysteresis: clear means
every usable reading since some time has been past the rule's clear threshold (below 160/100
mmHg after a crisis, at or above 3.9 mmol/L after a hypo), not merely back under the alert
threshold. The state is HOLD while the latest reading is not yet clear; the rule never fires
from here (that is the streaming path's job).
"""

from __future__ import annotations

import numpy as np

from alerting.batch import BatchContext, RuleOutcome
from alerting.decisions import AlertDecision
from alerting.rules._common import CLEAR, HOLD, first_last, states

CRISIS = "bp.hypertensive_crisis"
HYPO = "glucose.hypo_level_2"


def evaluate(ctx: BatchContext) -> dict[str, RuleOutcome]:
    out = {}
    if ctx.bp is not None:
        bp, par = ctx.bp, ctx.params
        p = bp.cols.patient
        usable = bp.for_thresholds
        hot = (bp.cols.systolic >= par.param(CRISIS, "clear_below_systolic")[p]) | (
            bp.cols.diastolic >= par.param(CRISIS, "clear_below_diastolic")[p]
        )
        out[CRISIS] = _status(ctx, p[usable], bp.cols.time[usable], hot[usable])
    if ctx.glucose is not None:
        g, par = ctx.glucose, ctx.params
        p = g.cols.patient
        usable = ~np.isnan(g.threshold_value)
        with np.errstate(invalid="ignore"):
            hot = g.threshold_value < par.param(HYPO, "clear_at_or_above_mmol_l")[p]
        out[HYPO] = _status(ctx, p[usable], g.cols.time[usable], hot[usable])
    return out


def _status(
    ctx: BatchContext, patient: np.ndarray, time: np.ndarray, hot: np.ndarray
) -> RuleOutcome:
    """Per patient: HOLD when the latest usable reading is not clear, else CLEAR since the first
    reading after the last one that was not (or since the first reading at all)."""
    n = ctx.n
    position = np.arange(len(patient))
    first_row, last_row, has = first_last(n, patient, position)
    last_hot = np.full(n, -1, np.intp)
    hot_rows = position[hot]
    _, last_hot_row, any_hot = first_last(n, patient[hot], hot_rows)
    last_hot[any_hot] = last_hot_row[any_hot]
    state = states(n)
    clear = has & (last_hot < last_row)
    state[has] = np.where(clear, CLEAR, HOLD)[has]
    since_row = np.where(any_hot, last_hot + 1, first_row)
    clear_since = np.full(n, np.nan)
    clear_since[clear] = time[since_row[clear]]
    return RuleOutcome(state, _never, clear_since)


def _never(i: int) -> AlertDecision:
    raise AssertionError("streaming rules fire in alerting.stream, not in the batch")
