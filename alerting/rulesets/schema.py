"""The parameters each rule takes, and the values they may have: what a rule-set file is
checked against when it is loaded, so a typo or a unit slip in a file clinicians edit is a
clear error at load time, not a rule that silently never fires.

Every parameter is a number (the batch rules turn each into one array over all patients).
``version`` (the rule's own version: bump it when the rule would fire differently) and
``auto_resolve_after_hours`` (how long the condition must have been clear before an open alert
resolves itself; absent: never) may be given for any rule.
"""

from __future__ import annotations

#: Rules evaluated on every new reading (thresholds with confirmation); the rest run in batch.
STREAMING_RULES = frozenset({"bp.hypertensive_crisis", "glucose.hypo_level_2"})

COMMON = {"version": (1, 10_000), "auto_resolve_after_hours": (0, 24 * 365)}

RULE_PARAMETERS: dict[str, dict[str, tuple[float, float]]] = {
    "bp.hypertensive_crisis": {
        "systolic_above": (100, 300),
        "diastolic_above": (60, 200),
        "confirm_min_gap_minutes": (0, 60),
        "confirm_window_minutes": (1, 240),
        "clear_below_systolic": (80, 300),
        "clear_below_diastolic": (40, 200),
    },
    "bp.home_mean_above_target": {
        "window_days": (4, 28),
        "min_readings": (1, 200),
        "min_days": (1, 28),
        "systolic_target": (100, 180),
        "diastolic_target": (60, 110),
        "clear_margin_systolic": (0, 30),
        "clear_margin_diastolic": (0, 20),
    },
    "bp.rising_trend": {
        "baseline_days": (7, 90),
        "monitor_days": (2, 14),
        "min_baseline_days": (5, 90),
        "cusum_k": (0, 3),
        "cusum_h": (1, 20),
        "sigma_floor_systolic": (0.5, 20),
        "sigma_floor_diastolic": (0.5, 20),
        "min_rise_systolic": (0, 60),
        "min_rise_diastolic": (0, 40),
        "min_run_days": (1, 14),
        "trend_min_days": (5, 120),
        "trend_alpha": (1e-6, 0.2),
    },
    "bp.irregular_pulse_recurrent": {
        "window_days": (1, 90),
        "min_flagged_readings": (2, 100),
        "min_flagged_days": (1, 90),
    },
    "glucose.hypo_level_2": {
        "below_mmol_l": (1.5, 4.0),
        "confirm_below_mmol_l": (1.5, 5.0),
        "confirm_min_gap_minutes": (0, 60),
        "confirm_window_minutes": (1, 240),
        "clear_at_or_above_mmol_l": (2.0, 6.0),
    },
    "glucose.hypo_frequency": {
        "window_days": (1, 28),
        "events_per_week_max": (0, 14),
        "level_2_events_for_high": (1, 14),
    },
    "glucose.time_below_range": {
        "window_days": (3, 90),
        "min_readings": (3, 1000),
        "min_low_readings": (1, 100),
        "below_level_1_max_percent": (0, 25),
        "below_level_2_max_percent": (0, 10),
    },
    "glucose.variability": {
        "window_days": (3, 90),
        "min_readings": (3, 1000),
        "cv_max_percent": (20, 60),
        "clear_margin_percent": (0, 20),
    },
    "adherence.blood_pressure": {
        "window_days": (3, 90),
        "min_share_percent": (1, 100),
        "silent_days": (1, 60),
    },
    "adherence.glucose": {
        "window_days": (3, 90),
        "min_share_percent": (1, 100),
        "silent_days": (1, 60),
    },
    "device.battery_low": {"battery_below_percent": (1, 100)},
    "device.clock": {"drift_report_minutes": (1, 24 * 60)},
    "device.silent": {"silent_days": (1, 60)},
}


def check_rule(rule_id: str, parameters: dict[str, object]) -> str | None:
    """What is wrong with one rule's table in a rule-set file, or None."""
    spec = RULE_PARAMETERS.get(rule_id)
    if spec is None:
        return f"unknown rule {rule_id!r} (known: {', '.join(sorted(RULE_PARAMETERS))})"
    missing = sorted(set(spec) - set(parameters))
    if missing:
        return f"rule {rule_id!r} lacks {', '.join(missing)}"
    for name, value in parameters.items():
        bounds = spec.get(name) or COMMON.get(name)
        if bounds is None:
            return f"rule {rule_id!r}: unknown parameter {name!r}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"rule {rule_id!r}: {name} must be a number, not {value!r}"
        if not bounds[0] <= value <= bounds[1]:
            return f"rule {rule_id!r}: {name} = {value:g} outside {bounds[0]:g}-{bounds[1]:g}"
    return None
