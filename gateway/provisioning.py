"""Provisioning: the gateway's device allowlist and device-facing settings, changed at run time.

Two sources, both in the same JSON format (``ProvisionedConfig``):

* the retained topic ``{root}/gateways/{id}/config``, published by the server — the gateway's
  ACL lets it read that topic and nothing else of the server's;
* a local file (``provisioning_file``), watched for changes: for installations without a
  provisioning server, and for a technician on site.

The settings in force are the gateway's own settings (file, environment, command line) overlaid
with the local file, then with the server's message: the server has the last word. A message
or file that does not parse or validate is logged and ignored; the last good configuration
stays in force. The last good server configuration is kept on disk beside the outbox, so a
gateway that reboots without a network still reads only its provisioned devices. An empty
retained message (the server deleting it) withdraws the server's configuration.

Changes apply without a restart: ``LiveAllowlist`` is the allowlist object handed to
``gateway.ble.watch_devices``, which consults it on every detection; the session context (clock
bound, meter rest, ...) is rebuilt for the sessions that start afterwards.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.ble import Allowlist
from gateway.settings import GatewaySettings
from gateway.status import write_atomically
from homewatch.wire import DeviceIdentity

log = logging.getLogger(__name__)

CONFIG_SCHEMA = "homewatch.gateway-config/1"
#: An allowlist entry: a Bluetooth address or a device key ("make/model/serial").
DeviceEntry = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ProvisionedConfig(BaseModel):
    """What the server (or the local file) sets; an absent field keeps the gateway's setting."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["homewatch.gateway-config/1"] = Field(default=CONFIG_SCHEMA, alias="schema")
    #: Increases with every change the server makes; reported in the gateway's status.
    revision: int = Field(ge=0)
    allowed_devices: list[DeviceEntry] | None = Field(default=None, max_length=1000)
    pair_devices: bool | None = None
    clock_drift_bound_seconds: float | None = Field(default=None, gt=0)
    set_device_clocks: bool | None = None
    stored_records_quiet_seconds: float | None = Field(default=None, gt=0)
    meter_rest_seconds: float | None = Field(default=None, ge=0)
    transfer_timeout_seconds: float | None = Field(default=None, gt=0)

    @classmethod
    def from_bytes(cls, payload: bytes | str) -> ProvisionedConfig:
        """Parse and validate; ``pydantic.ValidationError`` on anything off-contract."""
        return cls.model_validate_json(payload)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()

    def overlay(self, settings: GatewaySettings) -> GatewaySettings:
        update = self.model_dump(exclude={"schema_", "revision"}, exclude_none=True)
        return settings.model_copy(update=update)


def provisioned_cache_path(outbox_path: Path) -> Path:
    """Where the last good server configuration is kept: beside the outbox."""
    return outbox_path.with_name(f"{outbox_path.stem}.provisioned.json")


class LiveAllowlist:
    """The allowlist ``gateway.ble.watch_devices`` consults on each detection, swappable.

    It answers like ``gateway.ble.Allowlist`` (``open``, ``may_connect``, ``allows``) from the
    allowlist currently in force.
    """

    def __init__(self, allowlist: Allowlist) -> None:
        self.current = allowlist
        #: Bumped on every change, so that a caller can drop state tied to the old list.
        self.generation = 0

    def replace(self, allowlist: Allowlist) -> None:
        if allowlist != self.current:
            self.current = allowlist
            self.generation += 1

    @property
    def open(self) -> bool:
        return self.current.open

    def may_connect(self, address: str) -> bool:
        return self.current.may_connect(address)

    def allows(self, identity: DeviceIdentity) -> bool:
        return self.current.allows(identity)


@dataclass(frozen=True, slots=True)
class Provisioned:
    """The outcome of a change: the settings now in force and where they came from."""

    settings: GatewaySettings
    revision: int | None
    source: str | None
    error: str | None


#: Called with the settings in force after every accepted change (and after a refused one,
#: with the error, so that the status can show it).
OnProvisioned = Callable[[Provisioned], None]


class Provisioner:
    """Keeps the last good configuration of each source and computes the settings in force."""

    def __init__(self, base: GatewaySettings, cache_path: Path, on_change: OnProvisioned) -> None:
        self._base = base
        self._cache_path = cache_path
        self._on_change = on_change
        self._file: ProvisionedConfig | None = None
        self._server: ProvisionedConfig | None = None
        self._error: str | None = None

    @property
    def in_force(self) -> Provisioned:
        settings = self._base
        for config in (self._file, self._server):
            if config is not None:
                settings = config.overlay(settings)
        top, source = (
            (self._server, "server")
            if self._server is not None
            else (self._file, "file")
            if self._file is not None
            else (None, None)
        )
        return Provisioned(settings, None if top is None else top.revision, source, self._error)

    def load_cache(self) -> None:
        """The last good server configuration, from before a restart (if there is one)."""
        try:
            payload = self._cache_path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.error("cannot read the provisioned configuration %s: %s", self._cache_path, exc)
            return
        try:
            self._server = ProvisionedConfig.from_bytes(payload)
        except ValidationError as exc:
            log.error("ignoring the cached configuration %s: %s", self._cache_path, _brief(exc))
            return
        log.info("provisioned configuration revision %d (cached)", self._server.revision)
        self._notify()

    def from_server(self, payload: bytes) -> None:
        """A message on the config topic (retained, or a live change)."""
        if not payload.strip():
            if self._server is not None:
                log.warning("the server withdrew the provisioned configuration")
                self._server = None
                self._error = None
                self._cache_path.unlink(missing_ok=True)
                self._notify()
            return
        config = self._parse(payload, "server message")
        if config is None or config == self._server:
            return
        try:
            write_atomically(self._cache_path, config.to_bytes())
        except OSError as exc:  # still applied: the cache only matters after a reboot
            log.error("cannot keep the provisioned configuration on disk: %s", exc)
        self._server = config
        log.info("provisioned configuration revision %d from the server", config.revision)
        self._notify()

    def from_file_text(self, payload: bytes, path: Path) -> None:
        config = self._parse(payload, str(path))
        if config is None or config == self._file:
            return
        self._file = config
        log.info("provisioned configuration revision %d from %s", config.revision, path)
        self._notify()

    async def watch_file(self, path: Path, interval: float = 2.0) -> None:
        """Apply ``path`` now and whenever it changes, until cancelled."""
        seen: tuple[int, int] | None = None
        missing_reported = False
        while True:
            try:
                stat = await asyncio.to_thread(path.stat)
                signature = (stat.st_mtime_ns, stat.st_size)
                if signature != seen:
                    seen = signature
                    self.from_file_text(await asyncio.to_thread(path.read_bytes), path)
                missing_reported = False
            except FileNotFoundError:
                if not missing_reported:
                    log.warning("provisioning file %s does not exist (yet)", path)
                    missing_reported = True
            except OSError as exc:
                log.error("cannot read the provisioning file %s: %s", path, exc)
            await asyncio.sleep(interval)

    def _parse(self, payload: bytes, source: str) -> ProvisionedConfig | None:
        try:
            config = ProvisionedConfig.from_bytes(payload)
        except ValidationError as exc:
            self._error = f"{source}: {_brief(exc)}"
            log.error(
                "invalid provisioned configuration (%s); keeping the configuration in force",
                self._error,
            )
            self._notify()
            return None
        if self._error is not None:  # a good one again: the status stops showing the error
            self._error = None
            self._notify()
        return config

    def _notify(self) -> None:
        self._on_change(self.in_force)


def _brief(exc: ValidationError) -> str:
    """One line per problem, without the input (it may be long)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in exc.errors()
    )


def describe_changes(old: GatewaySettings, new: GatewaySettings) -> dict[str, object]:
    """The provisionable fields that differ, with their new values (for the log)."""
    fields = set(ProvisionedConfig.model_fields) - {"schema_", "revision"}
    return {f: getattr(new, f) for f in sorted(fields) if getattr(old, f) != getattr(new, f)}


def json_config(**fields: object) -> bytes:
    """A config message as the server would publish it (tests, tools)."""
    return json.dumps({"schema": CONFIG_SCHEMA, **fields}).encode()
