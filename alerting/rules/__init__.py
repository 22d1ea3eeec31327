"""The batch rules (windows over days), one module per kind of rule.

The streaming threshold rules live beside the package (``alerting.crisis``,
``alerting.hypoglycaemia``); ``thresholds`` here only reports whether their conditions have
cleared, for auto-resolve.
"""

from __future__ import annotations

from alerting.batch import BatchRule
from alerting.rules import (
    adherence,
    devices,
    glucose,
    home_mean,
    irregular_pulse,
    thresholds,
    trend,
)

#: (the rule ids a function serves, the function), in evaluation order.
BATCH_RULES: tuple[tuple[tuple[str, ...], BatchRule], ...] = (
    ((home_mean.RULE_ID,), home_mean.evaluate),
    ((trend.RULE_ID,), trend.evaluate),
    ((irregular_pulse.RULE_ID,), irregular_pulse.evaluate),
    ((glucose.FREQUENCY, glucose.BELOW_RANGE, glucose.VARIABILITY), glucose.evaluate),
    (tuple(adherence.METRICS), adherence.evaluate),
    ((devices.BATTERY, devices.CLOCK, devices.SILENT), devices.evaluate),
    ((thresholds.CRISIS, thresholds.HYPO), thresholds.evaluate),
)
