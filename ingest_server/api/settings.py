"""Settings of the API itself (limits, live stream), from ``HOMEWATCH_API_*`` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOMEWATCH_API_", extra="ignore", frozen=True)

    #: Largest request body; larger ones get 413 before they are read.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    #: How often the live stream looks for changed alerts.
    live_poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    #: Changes committed up to this long after their ``updated_at`` are still streamed (a
    #: transaction stamps ``now()`` at its start and may commit later).
    live_overlap_s: float = Field(default=10.0, ge=0, le=300)
    #: A stream ends after this long; the client reconnects with ``Last-Event-ID`` (so a server
    #: shutdown never waits on an idle stream for longer).
    live_max_duration_s: float = Field(default=300.0, gt=0, le=3600)
    #: A comment line this often keeps proxies from closing an idle stream.
    live_keepalive_s: float = Field(default=15.0, gt=0, le=300)
