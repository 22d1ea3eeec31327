"""Errors of the profile: a missing thing (404), a conflict with the stored state (409), a value
the profile refuses (422). ``public`` is safe to show the caller."""

from __future__ import annotations

from ingest_server.errors import IngestError


class ProfileError(IngestError):
    """Root of the profile's errors."""

    @property
    def public(self) -> str:
        return str(self)


class NotFound(ProfileError):
    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"no {kind} {key!r}")
        self.kind = kind
        self.key = key


class Conflict(ProfileError):
    """The request contradicts what is stored (a duplicate, a state that does not allow it)."""


class InvalidTransition(Conflict):
    def __init__(self, alert_id: int, status: str, action: str) -> None:
        super().__init__(f"alert {alert_id} is {status}: cannot {action} it")
        self.alert_id = alert_id
        self.status = status
        self.action = action


class InvalidValue(ProfileError):
    """A value that is well-formed but not acceptable (an unknown target, one out of range)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
