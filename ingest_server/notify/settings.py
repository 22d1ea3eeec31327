"""Settings of the webhook dispatcher, from ``HOMEWATCH_WEBHOOK_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOMEWATCH_WEBHOOK_", extra="ignore", frozen=True)

    #: Run the dispatcher inside the API process.
    enabled: bool = True
    #: How often to look for alerts to announce and deliveries that are due.
    poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    #: Attempts per delivery before it is marked failed.
    max_attempts: int = Field(default=6, ge=1, le=20)
    #: Back-off before attempt n+1: base x 2^(n-1), capped, with +-20 % jitter.
    retry_base_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=600.0, gt=0)
    #: One attempt's HTTP timeout.
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    #: Alerts changed longer ago than this are not announced (e.g. after a long outage).
    lookback_s: float = Field(default=86400.0, gt=0)
    #: Deliveries attempted per poll.
    batch_size: int = Field(default=20, ge=1, le=500)
