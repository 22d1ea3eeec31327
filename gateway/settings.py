"""Gateway settings: command line > environment (HOMEWATCH_GATEWAY_*) > a TOML config file >
defaults, all through pydantic-settings.

The config file is given with ``--config`` or ``HOMEWATCH_GATEWAY_CONFIG_FILE`` and holds the
same keys as the environment without the prefix (``deploy/gateway/gateway.example.toml``).
Secrets stay out of it: the MQTT password comes from ``HOMEWATCH_GATEWAY_MQTT_PASSWORD`` or,
better, a file (``mqtt_password_file``; under systemd a ``LoadCredential=``).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gateway.logging_setup import LogFormat
from gateway.mqtt import MqttSecurity
from homewatch.wire import TOPIC_ROOT, Identifier

CONFIG_FILE_ENV = "HOMEWATCH_GATEWAY_CONFIG_FILE"
#: The file ``GatewaySettings.load`` is reading (pydantic-settings builds sources in a classmethod).
_config_file: ContextVar[Path | None] = ContextVar("gateway_config_file", default=None)


class SettingsFileError(Exception):
    """The config file named on the command line or in the environment cannot be used."""


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOMEWATCH_GATEWAY_", extra="forbid")

    gateway_id: Identifier = "gw-local"
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    topic_root: str = TOPIC_ROOT
    outbox_path: Path = Path("var/gateway/outbox.sqlite3")
    #: Time zone of the devices' wall clocks (BLE Date Time carries none).
    device_timezone: str = "UTC"
    #: None: the platform's Bluetooth (BlueZ on Linux). A bumble transport such as
    #: "tcp-client:127.0.0.1:9001" reaches simulated devices in another process.
    ble_transport: str | None = None
    #: Readings per MQTT message when a backlog goes out (see wire.MAX_READINGS_PER_MESSAGE).
    batch_size: int = Field(default=50, ge=1, le=500)
    reconnect_min_seconds: float = Field(default=1.0, gt=0)
    reconnect_max_seconds: float = Field(default=30.0, gt=0)

    # --- MQTT credentials, TLS and flow control ---
    #: Defaults to the gateway id when a password is given (ACL patterns use %u).
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    #: A file holding the password (first line); preferred over the environment variable.
    mqtt_password_file: Path | None = None
    #: CA that signed the broker's certificate (mqtts:// URLs; default: the system's CAs).
    mqtt_ca_file: Path | None = None
    #: Client certificate and key (PEM) where the broker authenticates gateways by certificate.
    mqtt_cert_file: Path | None = None
    mqtt_key_file: Path | None = None
    #: A silently dead link is noticed after about 1.5 x this.
    mqtt_keepalive_seconds: int = Field(default=30, ge=2, le=65535)
    #: QoS-1 messages in flight at most (lowered further by the broker's Receive Maximum).
    mqtt_max_inflight: int = Field(default=20, ge=1, le=65535)

    # --- outbox bound, status, metrics, logs, provisioning ---
    #: Readings the outbox holds at most before refusing new ones (see gateway.outbox).
    #: About 1 kB of disk each (bench/gateway_outbox.py); None: unbounded.
    outbox_max_readings: int | None = Field(default=100_000, ge=1)
    #: Retained status and status file: refreshed this often, and soon after any change.
    status_interval_seconds: float = Field(default=60.0, gt=0)
    #: Prometheus metrics on this local port (None: not served; 0: any free port).
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    log_format: LogFormat = "text"
    #: A local provisioning file (JSON, the retained config message's format), watched for
    #: changes; the retained config topic, when the server publishes one, takes precedence.
    provisioning_file: Path | None = None

    #: Provisioned devices: Bluetooth addresses and/or device keys ("make/model/serial").
    #: Empty: every health device in range is read (development and demos only).
    allowed_devices: list[str] = Field(default_factory=list)
    #: Pair (bond) with devices before reading them; needed by meters that encrypt their data.
    pair_devices: bool = False
    #: A device clock off by more than this from the gateway's is corrected (and set).
    clock_drift_bound_seconds: float = Field(default=120.0, gt=0)
    #: Write the gateway's time into a wrong or unset device clock when it is writable.
    set_device_clocks: bool = True
    #: Quiet period that ends a cuff's backlog of stored records (cuffs have no end marker).
    stored_records_quiet_seconds: float = Field(default=2.0, gt=0)
    #: After reading a glucose meter, leave it alone this long.
    meter_rest_seconds: float = Field(default=300.0, ge=0)
    #: Bound on one RACP transfer.
    transfer_timeout_seconds: float = Field(default=120.0, gt=0)
    #: Extra quirk-table entries (TOML, same shape as gateway/quirks.toml); they win on a match.
    quirks_path: Path | None = None

    @model_validator(mode="after")
    def _one_password_source(self) -> GatewaySettings:
        if self.mqtt_password is not None and self.mqtt_password_file is not None:
            raise ValueError("give mqtt_password or mqtt_password_file, not both")
        if self.mqtt_key_file is not None and self.mqtt_cert_file is None:
            raise ValueError("mqtt_key_file needs mqtt_cert_file")
        return self

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> GatewaySettings:
        """Settings from ``overrides`` (the command line), the environment, and the config file
        (``config_file``, else ``$HOMEWATCH_GATEWAY_CONFIG_FILE``), in that order of precedence."""
        if config_file is None and os.environ.get(CONFIG_FILE_ENV):
            config_file = Path(os.environ[CONFIG_FILE_ENV])
        if config_file is not None:
            if config_file.suffix != ".toml":
                raise SettingsFileError(f"{config_file}: the config file must be TOML (.toml)")
            if not config_file.is_file():
                raise SettingsFileError(f"{config_file}: no such config file")
        token = _config_file.set(config_file)
        try:
            return cls(**overrides)
        finally:
            _config_file.reset(token)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _config_file.get()
        if path is None:
            return init_settings, env_settings, file_secret_settings
        toml = TomlConfigSettingsSource(settings_cls, toml_file=path)
        return init_settings, env_settings, toml, file_secret_settings

    def mqtt_security(self) -> MqttSecurity:
        """Credentials for the broker; reads the password file (a start-up failure if absent)."""
        password = None
        if self.mqtt_password_file is not None:
            try:
                lines = self.mqtt_password_file.read_text().splitlines()
            except OSError as exc:
                raise SettingsFileError(f"cannot read the MQTT password file: {exc}") from exc
            password = lines[0] if lines else ""
        elif self.mqtt_password is not None:
            password = self.mqtt_password.get_secret_value()
        username = self.mqtt_username
        if username is None and password is not None:
            username = self.gateway_id
        return MqttSecurity(
            username=username,
            password=password,
            ca_file=self.mqtt_ca_file,
            cert_file=self.mqtt_cert_file,
            key_file=self.mqtt_key_file,
        )
