"""Notifications: webhooks for urgent alerts, HMAC-signed, retried, with a delivery log."""

from ingest_server.notify.dispatcher import WebhookDispatcher
from ingest_server.notify.settings import WebhookSettings
from ingest_server.notify.signing import SIGNATURE_HEADER, sign, verify

__all__ = ["SIGNATURE_HEADER", "WebhookDispatcher", "WebhookSettings", "sign", "verify"]
