"""Alert lifecycle decisions: one open alert per (patient, rule), repeats update it.

``merge`` is the core every lifecycle transition builds on; the full lifecycle (acknowledge,
resolve, snooze, auto-resolve, escalation, quiet hours) is ``alerting.alert_state``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from alerting.decisions import AlertDecision, Severity


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """The state of a patient's open alert for one rule, as the ingest server stores it."""

    rule_id: str
    rule_version: int
    severity: Severity
    title: str
    explanation: str
    evidence: dict[str, Any]
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime


def merge(existing: OpenAlert | None, decision: AlertDecision) -> OpenAlert:
    """The open alert after ``decision``: a new alert, or the existing one updated.

    Severity never drops while the alert is open (a confirmed crisis stays urgent until a
    clinician resolves it); evidence keeps every reading that ever fired the rule.
    """
    if existing is None:
        return OpenAlert(
            rule_id=decision.rule_id,
            rule_version=decision.rule_version,
            severity=decision.severity,
            title=decision.title,
            explanation=decision.explanation,
            evidence=decision.evidence,
            occurrences=1,
            first_seen_at=decision.first_evidence_at,
            last_seen_at=decision.observed_at,
        )
    if existing.rule_id != decision.rule_id:
        raise ValueError(f"cannot merge {decision.rule_id!r} into an alert of {existing.rule_id!r}")
    # The decision's readings come in time order and, for the same episode, include the earlier
    # ones: put them last, so that readings processed out of order still read in time order.
    new_ids = list(decision.evidence.get("reading_ids", []))
    reading_ids = [
        r for r in existing.evidence.get("reading_ids", []) if r not in new_ids
    ] + new_ids
    worse = decision.severity >= existing.severity
    return replace(
        existing,
        rule_version=decision.rule_version,
        severity=max(existing.severity, decision.severity),
        title=decision.title if worse else existing.title,
        explanation=decision.explanation if worse else existing.explanation,
        evidence={**decision.evidence, "reading_ids": reading_ids},
        occurrences=existing.occurrences + 1,
        first_seen_at=min(existing.first_seen_at, decision.first_evidence_at),
        last_seen_at=max(existing.last_seen_at, decision.observed_at),
    )
