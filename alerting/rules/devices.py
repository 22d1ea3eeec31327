"""Device health: a low battery, a clock never set or far off, a device not heard from.

Per device, then per patient (one open alert per patient and rule, naming every device
concerned). A clock the gateway corrected did not corrupt any reading (the times were
corrected), so it is information; a clock never set means the readings carry receive times,
which is a warning: the morning/evening split and the re-measurement windows rely on them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from alerting.batch import BatchContext, RuleOutcome, utc
from alerting.columns import CLOCK_STATUSES, DEVICE_KINDS
from alerting.decisions import AlertDecision, Severity
from alerting.localtime import DAY
from alerting.rules._common import CLEAR, FIRED, no_decision, per_patient, states
from alerting.text import day_text, number

BATTERY = "device.battery_low"
CLOCK = "device.clock"
SILENT = "device.silent"
_NAMES = {"blood_pressure": "blood-pressure cuff", "glucose": "glucose meter"}
_UNSET, _CORRECTED = CLOCK_STATUSES.index("unset"), CLOCK_STATUSES.index("corrected")


def evaluate(ctx: BatchContext) -> dict[str, RuleOutcome]:
    d, par, n = ctx.devices, ctx.params, ctx.n
    if d is None:
        return {rule: RuleOutcome(states(n), no_decision) for rule in (BATTERY, CLOCK, SILENT)}
    p = d.patient
    has_device = per_patient(n, p) > 0

    low = (d.battery_percent < par.param(BATTERY, "battery_below_percent")[p]) | d.battery_low
    unset = d.clock_status == _UNSET
    drift = (d.clock_status == _CORRECTED) & (
        np.abs(d.clock_offset) >= par.param(CLOCK, "drift_report_minutes")[p] * 60
    )
    known = ~np.isnan(d.last_contact)
    quiet_days = (ctx.at - d.last_contact) / DAY
    silent = known & (quiet_days >= par.param(SILENT, "silent_days")[p])

    def describe(j: int) -> str:
        kind = _NAMES[DEVICE_KINDS[d.kind[j]]]
        name = (
            d.description[j] if d.description is not None and d.description[j] else d.device_key[j]
        )
        return f"{kind} {name}"

    def battery_text(j: int) -> str:
        level = d.battery_percent[j]
        return f"{describe(j)}: battery " + (
            f"{level:.0f} %" if not np.isnan(level) else "low (device flag)"
        )

    def clock_text(j: int) -> str:
        if unset[j]:
            return (
                f"{describe(j)}: clock not set, readings are timed by their arrival at the gateway"
            )
        return (
            f"{describe(j)}: clock was {d.clock_offset[j] / 60:+.0f} min off (times were corrected)"
        )

    def silent_text(j: int) -> str:
        i = int(p[j])
        return (
            f"{describe(j)}: no gateway contact for {quiet_days[j]:.0f} days"
            f" (since {day_text(ctx.local(i, d.last_contact[j]))})"
        )

    return {
        BATTERY: _outcome(
            ctx,
            BATTERY,
            low,
            has_device,
            lambda j: Severity.INFO,
            "Device battery low",
            battery_text,
            "Ask the patient to replace or charge the battery.",
        ),
        CLOCK: _outcome(
            ctx,
            CLOCK,
            unset | drift,
            has_device,
            lambda j: Severity.WARNING if unset[j] else Severity.INFO,
            "Device clock",
            clock_text,
            "The gateway sets the device's clock when it next connects; if the problem"
            " comes back, check the device (a battery change resets clocks).",
        ),
        SILENT: _outcome(
            ctx,
            SILENT,
            silent,
            per_patient(n, p[known]) > 0,
            lambda j: Severity.WARNING,
            "Device not heard from",
            silent_text,
            "Check the gateway (power, network) and the device's batteries.",
        ),
    }


def _outcome(
    ctx: BatchContext,
    rule_id: str,
    device_fired: np.ndarray,
    evaluable: np.ndarray,
    severity: Callable[[int], Severity],
    title: str,
    describe: Callable[[int], str],
    advice: str,
) -> RuleOutcome:
    d, n = ctx.devices, ctx.n
    assert d is not None
    fired = per_patient(n, d.patient[device_fired]) > 0
    state = states(n)
    state[evaluable] = np.where(fired, FIRED, CLEAR)[evaluable]
    # The fired devices grouped by patient, so each decision finds its own in O(log n).
    rows = np.flatnonzero(device_fired)
    rows = rows[np.argsort(d.patient[rows], kind="stable")]
    owners = d.patient[rows]

    def decide(i: int) -> AlertDecision:
        rule = ctx.params.rule(i, rule_id)
        mine = rows[np.searchsorted(owners, i) : np.searchsorted(owners, i, side="right")]
        return AlertDecision(
            rule_id=rule_id,
            rule_version=rule.version,
            severity=max(severity(int(j)) for j in mine),
            title=title,
            explanation="; ".join(describe(int(j)) for j in mine) + ". " + advice,
            evidence={
                "reading_ids": [],
                "devices": [str(d.device_key[j]) for j in mine],
                "statistics": {
                    "battery_percent": [number(d.battery_percent[j], 0) for j in mine],
                    "clock_status": [CLOCK_STATUSES[d.clock_status[j]] for j in mine],
                    "clock_offset_seconds": [number(d.clock_offset[j], 0) for j in mine],
                    "last_contact_at": [
                        None if np.isnan(d.last_contact[j]) else utc(d.last_contact[j]).isoformat()
                        for j in mine
                    ],
                },
            },
            observed_at=ctx.at_datetime,
            programme=rule.programme,
        )

    return RuleOutcome(state, decide)
