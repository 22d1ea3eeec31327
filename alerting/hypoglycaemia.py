"""Level 2 hypoglycaemia: a glucose reading below 3.0 mmol/L (54 mg/dL), ADA.

One such reading is HIGH: the patient should treat it and re-check after 15 minutes (the ADA
"15-15" rule). A re-check within the window that is still hypoglycaemic confirms it: URGENT.
"Still hypoglycaemic" is below 3.9 mmol/L, not below 3.0 (hysteresis): a patient at 2.8 who
re-checks at 3.4 after treatment is not out of it. A "LO" reading (below the meter's range)
counts as below 3.0. Control-solution tests, sensor faults, failed and implausible readings
never count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta, tzinfo
from typing import Any

from alerting.decisions import AlertDecision, Severity
from alerting.observations import BELOW_METER_RANGE, GlucoseObservation
from alerting.plausibility import glucose_problem
from alerting.quality import SENSOR_FAULTS
from alerting.text import mmol

RULE_ID = "glucose.hypo_level_2"


@dataclass(frozen=True, slots=True)
class HypoThresholds:
    below: float
    confirm_below: float
    confirm_min_gap: timedelta
    confirm_window: timedelta

    @classmethod
    def from_parameters(cls, p: Mapping[str, Any]) -> HypoThresholds:
        return cls(
            below=float(p["below_mmol_l"]),
            confirm_below=float(p["confirm_below_mmol_l"]),
            confirm_min_gap=timedelta(minutes=float(p["confirm_min_gap_minutes"])),
            confirm_window=timedelta(minutes=float(p["confirm_window_minutes"])),
        )


def counted_value(o: GlucoseObservation) -> float | None:
    """The value a reading counts as for the hypo rules (LO = 0.0), or None if it cannot count."""
    if o.control_solution or not o.sensor_status.isdisjoint(SENSOR_FAULTS):
        return None
    if BELOW_METER_RANGE in o.sensor_status:
        return 0.0
    if o.mmol_l is None or glucose_problem(o.mmol_l) is not None:
        return None
    return o.mmol_l


def evaluate_hypo(
    observations: Sequence[GlucoseObservation],
    thresholds: HypoThresholds,
    rule_version: int,
    *,
    tz: tzinfo = UTC,
    programme: str | None = None,
) -> AlertDecision | None:
    """Decide on the latest level-2 episode among ``observations`` (any order), or None.

    The episode is the latest level-2 reading with the hypoglycaemic readings (below
    ``confirm_below``) around it within the window, up to a reading that is not.
    """
    usable = sorted(
        ((o, v) for o in observations if (v := counted_value(o)) is not None),
        key=lambda ov: ov[0].measured_at,
    )
    severe = [k for k, (_, v) in enumerate(usable) if v < thresholds.below]
    if not severe:
        return None
    k = severe[-1]
    latest = usable[k][0]

    def near(i: int) -> bool:
        o, v = usable[i]
        return v < thresholds.confirm_below and abs(o.measured_at - latest.measured_at) <= (
            thresholds.confirm_window
        )

    lo = k
    while lo > 0 and near(lo - 1):
        lo -= 1
    hi = k
    while hi + 1 < len(usable) and near(hi + 1):
        hi += 1
    episode = usable[lo : hi + 1]
    first, last = episode[0][0], episode[-1][0]
    confirmed = last.measured_at - first.measured_at >= thresholds.confirm_min_gap
    recovered = [
        (o, v)
        for o, v in usable[hi + 1 :]
        if v >= thresholds.confirm_below and o.measured_at - last.measured_at <= timedelta(hours=6)
    ][:1]
    lowest = min(v for _, v in episode)
    return AlertDecision(
        rule_id=RULE_ID,
        rule_version=rule_version,
        severity=Severity.URGENT if confirmed else Severity.HIGH,
        title="Level 2 hypoglycaemia confirmed" if confirmed else "Level 2 hypoglycaemia",
        explanation=_explain(episode, thresholds, confirmed, recovered, tz),
        evidence={
            "reading_ids": [o.reading_id for o, _ in episode],
            "statistics": {
                "readings": len(episode),
                "lowest_mmol_l": lowest,
                "lowest_below_meter_range": lowest == 0.0,
                "confirmed": confirmed,
                "first_at": first.measured_at.isoformat(),
                "last_at": last.measured_at.isoformat(),
                "threshold": f"<{thresholds.below:g} mmol/L",
                "later_recovery_reading_ids": [o.reading_id for o, _ in recovered],
                "time_estimated": any(o.time_source == "received" for o, _ in episode),
            },
        },
        observed_at=last.measured_at,
        started_at=first.measured_at,
        programme=programme,
    )


def _explain(
    episode: list[tuple[GlucoseObservation, float]],
    t: HypoThresholds,
    confirmed: bool,
    recovered: list[tuple[GlucoseObservation, float]],
    tz: tzinfo,
) -> str:
    severe = next((o, v) for o, v in episode if v < t.below)
    local = severe[0].measured_at.astimezone(tz)
    text = (
        f"Blood glucose {mmol(severe[1])} at {local:%Y-%m-%d %H:%M} {local.tzname()} is below"
        f" {mmol(t.below)}: level 2 hypoglycaemia."
    )
    if confirmed:
        (a, _), (b, vb) = episode[0], episode[-1]
        minutes = (b.measured_at - a.measured_at).total_seconds() / 60
        text += (
            f" Still hypoglycaemic on a re-check {minutes:.0f} min apart ({mmol(vb)}"
            " at the latest): contact the patient now."
        )
    else:
        text += (
            " Not yet confirmed by a re-check: the patient should take 15 g of fast-acting"
            " carbohydrate and re-check after 15 minutes."
        )
    if recovered:
        text += f" A later reading was {mmol(recovered[0][1])}."
    if any(o.time_source == "received" for o, _ in episode):
        text += " Times are the gateway's receive times (the meter's clock was not usable)."
    return text
