"""What the gateway says about itself: the retained status message and the local status file.

One model, ``GatewayStatus``, serves both: the service publishes it retained on
``{root}/gateways/{id}/status`` (the broker replaces it with the Will, "offline", when the
connection is lost) and writes it atomically next to the outbox for ``homewatch gateway status``.
``StatusBoard`` is the running gateway's mutable record of what it has seen; it never does I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gateway.outbox import OutboxStats
from homewatch.wire import DeviceIdentity, Identifier

STATUS_SCHEMA = "homewatch.gateway-status/1"


def software_version() -> str:
    """The installed package's version (package metadata, so it is what is really running)."""
    try:
        return metadata.version("homewatch")
    except metadata.PackageNotFoundError:
        return "unknown"


def status_path(outbox_path: Path) -> Path:
    """Where the running gateway writes its status file: beside its outbox."""
    return outbox_path.with_name(f"{outbox_path.stem}.status.json")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceStatus(_Model):
    device_key: str
    address: str
    #: The profile the gateway read it with: "blood_pressure" or "glucose".
    kind: str | None = None
    battery_percent: int | None = Field(default=None, ge=0, le=100)
    last_connected_at: AwareDatetime | None = None
    #: When the gateway received the newest reading it queued from this device (its clock).
    last_reading_at: AwareDatetime | None = None
    #: Readings queued from this device since the gateway started.
    readings: int = 0
    #: The last session error, if the last session failed.
    last_error: str | None = None


class OutboxStatus(_Model):
    depth: int
    limit: int | None
    full: bool
    oldest_enqueued_at: AwareDatetime | None = None
    #: Readings stored past the limit because their device could not send them again.
    stored_beyond_limit: int = 0
    #: New readings refused while full (they stayed on their devices).
    refused: int = 0
    rejected_payloads: int = 0


class GatewayStatus(_Model):
    """The retained status message and the status file. Fields a Will cannot know are None."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["homewatch.gateway-status/1"] = Field(default=STATUS_SCHEMA, alias="schema")
    gateway_id: Identifier
    state: Literal["online", "offline"]
    software_version: str
    pid: int | None = None
    started_at: AwareDatetime | None = None
    #: When this status was made (None in the Will: the broker sends it later).
    updated_at: AwareDatetime | None = None
    mqtt_broker: str | None = None
    mqtt_connected: bool = False
    mqtt_last_error: str | None = None
    last_publish_at: AwareDatetime | None = None
    #: Readings the broker has acknowledged since start.
    published: int = 0
    outbox: OutboxStatus | None = None
    devices: list[DeviceStatus] | None = None
    #: Revision of the provisioned configuration in force (None: settings only).
    config_revision: int | None = None
    config_source: str | None = None
    #: Why the last provisioned configuration was ignored, if it was.
    config_error: str | None = None

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_bytes(cls, payload: bytes | str) -> GatewayStatus:
        return cls.model_validate_json(payload)

    @classmethod
    def will(cls, gateway_id: str, version: str) -> GatewayStatus:
        """The Will: what the broker publishes when the gateway vanishes."""
        return cls(gateway_id=gateway_id, state="offline", software_version=version)


class StatusBoard:
    """The running gateway's record of itself; ``changed`` is set on anything worth publishing."""

    def __init__(self, gateway_id: str, broker: str) -> None:
        self.gateway_id = gateway_id
        self.broker = broker
        self.version = software_version()
        self.started_at = datetime.now(UTC)
        self.devices: dict[str, DeviceStatus] = {}
        self.mqtt_connected = False
        self.mqtt_last_error: str | None = None
        self.last_publish_at: datetime | None = None
        self.published = 0
        self.refused = 0
        self.config_revision: int | None = None
        self.config_source: str | None = None
        self.config_error: str | None = None
        self.changed = asyncio.Event()

    def device_connected(self, identity: DeviceIdentity, kind: str | None) -> DeviceStatus:
        device = self._device(identity)
        device.kind = kind or device.kind
        device.last_connected_at = datetime.now(UTC)
        device.last_error = None
        self.changed.set()
        return device

    def battery(self, identity: DeviceIdentity, percent: int | None) -> None:
        if percent is not None and 0 <= percent <= 100:
            self._device(identity).battery_percent = percent
            self.changed.set()

    def readings_queued(self, identity: DeviceIdentity, count: int, received_at: datetime) -> None:
        device = self._device(identity)
        device.readings += count
        if device.last_reading_at is None or received_at > device.last_reading_at:
            device.last_reading_at = received_at
        self.changed.set()

    def session_failed(self, identity: DeviceIdentity, error: str) -> None:
        self._device(identity).last_error = error
        self.changed.set()

    def published_batch(self, count: int) -> None:
        self.published += count
        self.last_publish_at = datetime.now(UTC)
        self.changed.set()

    def refused_readings(self, count: int) -> None:
        self.refused += count
        self.changed.set()

    def mqtt(self, connected: bool, last_error: str | None) -> None:
        if (connected, last_error) != (self.mqtt_connected, self.mqtt_last_error):
            self.mqtt_connected, self.mqtt_last_error = connected, last_error
            self.changed.set()

    def config(self, revision: int | None, source: str | None, error: str | None) -> None:
        self.config_revision, self.config_source, self.config_error = revision, source, error
        self.changed.set()

    def snapshot(
        self,
        state: Literal["online", "offline"],
        outbox: OutboxStats | None,
        stored_beyond_limit: int = 0,
    ) -> GatewayStatus:
        return GatewayStatus(
            gateway_id=self.gateway_id,
            state=state,
            software_version=self.version,
            pid=os.getpid(),
            started_at=self.started_at,
            updated_at=datetime.now(UTC),
            mqtt_broker=self.broker,
            mqtt_connected=self.mqtt_connected,
            mqtt_last_error=self.mqtt_last_error,
            last_publish_at=self.last_publish_at,
            published=self.published,
            outbox=None
            if outbox is None
            else OutboxStatus(
                depth=outbox.depth,
                limit=outbox.limit,
                full=outbox.full,
                oldest_enqueued_at=outbox.oldest_enqueued_at,
                stored_beyond_limit=stored_beyond_limit,
                refused=self.refused,
                rejected_payloads=outbox.rejected,
            ),
            devices=sorted(
                (d.model_copy() for d in self.devices.values()), key=lambda d: d.device_key
            ),
            config_revision=self.config_revision,
            config_source=self.config_source,
            config_error=self.config_error,
        )

    def _device(self, identity: DeviceIdentity) -> DeviceStatus:
        key = identity.device_key
        device = self.devices.get(key)
        if device is None:
            device = self.devices[key] = DeviceStatus(device_key=key, address=identity.address)
        return device


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader (or a power cut) sees the old file or the
    new one, never half of one: temporary file in the same directory, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_status_file(path: Path) -> GatewayStatus:
    """The status a gateway wrote; ``FileNotFoundError`` or ``pydantic.ValidationError``."""
    return GatewayStatus.from_bytes(path.read_bytes())
