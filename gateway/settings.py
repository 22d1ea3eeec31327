"""Gateway settings: from the environment (HOMEWATCH_GATEWAY_*) and the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from homewatch.wire import TOPIC_ROOT, Identifier


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
