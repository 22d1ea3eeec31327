"""Settings of the ingest server, from ``HOMEWATCH_*`` environment variables.

Built in ``main()`` / ``create_app()`` / ``run_ingest()``'s caller, never at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from homewatch import wire


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    host: str
    port: int
    username: str | None
    password: str | None


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOMEWATCH_", extra="ignore", frozen=True)

    database_url: str = "postgresql://postgres@127.0.0.1:5432/homewatch"
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=4, ge=1)
    #: At start-up, how long to wait for the database before giving up (a fatal error).
    db_start_timeout_s: float = Field(default=15.0, gt=0)

    #: ``mqtt://[user[:password]@]host[:port]`` (TLS is a later issue).
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    #: "5", or "3.1.1" for brokers that only speak 3.1.1 (the embedded amqtt fallback); 3.1.1
    #: has no shared subscriptions, so set ``shared_group`` to None with it.
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    topic_root: str = wire.TOPIC_ROOT
    #: MQTT 5 shared-subscription group; None subscribes to the plain topic filter.
    shared_group: str | None = "ingest"
    #: Must be unique per worker process; the persistent session is keyed by it.
    client_id: str = Field(default="homewatch-ingest", min_length=1, max_length=128)
    keepalive_s: int = Field(default=30, ge=5)
    #: How long the broker keeps our session (subscription + unacked messages) while we are away.
    session_expiry_s: int = Field(default=3600, ge=0)
    #: Messages held at once, from receipt to acknowledgement (the consumer's in-flight bound and
    #: memory bound: at most this many times the largest message, 256 KiB, in memory); also sent
    #: as the MQTT 5 Receive Maximum.
    receive_maximum: int = Field(default=1000, ge=1, le=65535)
    #: And at most this many bytes of payload held (one message always fits): a backlog of large
    #: messages holds fewer of them.
    receive_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    #: Batches stored concurrently, each in its own transaction, its messages acknowledged after
    #: its commit.
    workers: int = Field(default=2, ge=1, le=64)
    #: A batch closes at this many messages, or this many readings, or this long after its
    #: first message arrived, whichever comes first. (At most 2,000 messages: a batch takes a
    #: database lock per patient, and the server's lock table is shared. 2,000 readings: a parsed
    #: reading takes about 6 KB, and three batches are in memory at once with two workers.)
    batch_max_messages: int = Field(default=250, ge=1, le=2000)
    batch_max_readings: int = Field(default=2000, ge=1, le=100_000)
    batch_max_delay_s: float = Field(default=0.005, ge=0, le=5)
    #: How often the service creates future partitions and applies the retention.
    storage_maintenance_interval_s: float = Field(default=3600.0, gt=0)
    reconnect_min_delay_s: int = Field(default=1, ge=1)
    reconnect_max_delay_s: int = Field(default=30, ge=1)
    #: Back-off between retries of a message while the database is unavailable.
    db_retry_min_s: float = Field(default=0.5, gt=0)
    db_retry_max_s: float = Field(default=30.0, gt=0)

    api_host: str = "127.0.0.1"
    #: 0 picks a free port (``IngestService.api_port`` tells which).
    api_port: int = Field(default=8000, ge=0, le=65535)
    #: Largest page of readings the API returns.
    api_max_readings: int = Field(default=1000, ge=1, le=1000)

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url_is_mqtt(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ValueError(f"expected mqtt://host:port, got {value!r}")
        parts.port  # noqa: B018 - raises ValueError on a bad port
        return value

    @field_validator("shared_group")
    @classmethod
    def _empty_group_is_none(cls, value: str | None) -> str | None:
        return value or None

    def mqtt_endpoint(self) -> MqttEndpoint:
        parts = urlsplit(self.mqtt_url)
        return MqttEndpoint(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 1883,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )
