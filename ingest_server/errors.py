"""The ingest server's exceptions: one root, subclasses carry what went wrong as attributes."""

from __future__ import annotations


class IngestError(Exception):
    """Root of every error the ingest server raises on purpose."""


class MigrationError(IngestError):
    """A schema migration could not be applied."""

    def __init__(self, version: str, message: str) -> None:
        super().__init__(f"migration {version}: {message}")
        self.version = version


class InvalidMessage(IngestError):
    """An MQTT message that is not a valid readings message for its topic (it is quarantined)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class UnknownPatient(IngestError):
    def __init__(self, patient_id: str) -> None:
        super().__init__(f"no patient {patient_id!r}")
        self.patient_id = patient_id


class BindingConflict(IngestError):
    """A device binding would overlap another binding of the same device."""

    def __init__(self, device_key: str, message: str) -> None:
        super().__init__(f"device {device_key!r}: {message}")
        self.device_key = device_key


class SettingsError(IngestError):
    """A setting has a value the server cannot use."""


class DatabaseError(IngestError):
    """The database failed; the subclasses say whether retrying can help."""


class DatabaseUnavailable(DatabaseError):
    """Connection lost, no connection in time, or a transient conflict: retry later."""


class DatabaseRejected(DatabaseError):
    """The database refused the data itself (e.g. a text with a NUL byte): retrying cannot help."""
