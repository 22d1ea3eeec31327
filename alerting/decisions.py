"""What the rules return: alert decisions, plain data the ingest server persists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any


class Severity(IntEnum):
    """Ordered, so that the worse of two severities is ``max``; stored by name."""

    INFO = 1
    WARNING = 2
    HIGH = 3
    URGENT = 4


class RuleState(IntEnum):
    """Where a patient stands on one rule after an evaluation (the batch reports one per rule).

    Only ``CLEAR`` lets an open alert's all-clear clock run (auto-resolve); ``HOLD`` is the
    hysteresis band (no longer firing, not yet clear) and ``INSUFFICIENT_DATA`` says nothing.
    """

    NOT_APPLICABLE = 0  # the rule is not in the patient's programmes
    INSUFFICIENT_DATA = 1
    CLEAR = 2
    HOLD = 3
    FIRED = 4


@dataclass(frozen=True, slots=True)
class AlertDecision:
    """A rule fired: which rule (and version), how bad, why, and on what evidence.

    ``evidence`` is JSON-ready: ``reading_ids`` (the readings that made the rule fire) and
    ``statistics`` (the numbers the rule computed from them).
    """

    rule_id: str
    rule_version: int
    severity: Severity
    title: str
    explanation: str
    evidence: dict[str, Any]
    #: Time of the newest reading in the evidence.
    observed_at: datetime
    #: Time of the oldest reading in the evidence (None: the same as ``observed_at``).
    started_at: datetime | None = None
    #: The dispensary programme whose rule set the rule came from (None: not recorded).
    programme: str | None = None

    @property
    def first_evidence_at(self) -> datetime:
        return self.started_at or self.observed_at
