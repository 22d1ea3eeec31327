"""The package's errors: one root, subclasses that say what was wrong and where.

Bad input (a malformed rule-set file, an unknown target, a reading file with a bad row, an
impossible lifecycle transition) is a typed error with a clear message, never a crash deep in
numpy.
"""

from __future__ import annotations


class AlertingError(Exception):
    """Root of every error ``alerting`` raises on purpose."""


class RuleSetError(AlertingError):
    """A rule-set file is missing or malformed, or names a rule or parameter we do not know."""


class ProfileError(AlertingError):
    """A patient profile is malformed (condition code, target, time zone, schedule)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class LifecycleError(AlertingError):
    """A transition that the alert's current state does not allow (e.g. acknowledging a
    resolved alert)."""

    def __init__(self, message: str, *, action: str, status: str) -> None:
        super().__init__(message)
        self.action = action
        self.status = status


class InputError(AlertingError):
    """Readings that cannot be evaluated: mismatched columns, or a bad row in a readings file.

    ``line`` is the 1-based line (JSON lines) or row (CSV, header = 1) of a file, when known.
    """

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line
