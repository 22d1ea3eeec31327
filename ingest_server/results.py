"""What storing a message did: the result types of the write path (re-exported by ``store``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert raised (``raised``) or updated by a stored message."""

    alert_id: int
    patient_id: str
    rule_id: str
    severity: str
    title: str
    occurrences: int
    reading_ids: tuple[str, ...]
    raised: bool


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What one MQTT message did to the database (for logs, metrics and the demo).

    ``stored`` and ``duplicates`` count readings of every kind; ``stored_glucose`` and
    ``duplicates_glucose`` say how many of them were glucose readings (the rest: blood pressure).
    """

    topic: str
    gateway_id: str | None
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    #: Why readings (or the whole message) were quarantined; None when nothing was. Readings set
    #: aside for different reasons in one message: the distinct reasons, sorted, "; "-joined.
    quarantine_reason: str | None = None
    quarantine_detail: str | None = None
    stored_reading_ids: tuple[str, ...] = ()
    alerts: tuple[AlertChange, ...] = field(default=())
    stored_glucose: int = 0
    duplicates_glucose: int = 0

    @property
    def alerts_raised(self) -> int:
        return sum(1 for a in self.alerts if a.raised)

    @property
    def alerts_updated(self) -> int:
        return sum(1 for a in self.alerts if not a.raised)
