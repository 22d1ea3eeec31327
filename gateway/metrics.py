"""Prometheus metrics of one gateway, served on an optional local port.

Each ``GatewayMetrics`` has its own ``CollectorRegistry`` (never the process-wide default), so
that several gateways in one process — the tests, the demo — do not collide, and nothing is
built at import time. Counters are cumulative since start; rates are Prometheus' job.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import generate_latest, start_http_server

log = logging.getLogger(__name__)

#: PUBLISH to PUBACK: milliseconds on a LAN, up to the publish timeout on a bad mobile link.
PUBLISH_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class GatewayMetrics:
    def __init__(self, gateway_id: str, version: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        Info("homewatch_gateway", "The gateway's identity.", registry=r).info(
            {"gateway_id": gateway_id, "version": version}
        )
        self.readings_decoded = Counter(
            "homewatch_gateway_readings_decoded",
            "Readings decoded and queued in the outbox (new ones).",
            ["kind"],
            registry=r,
        )
        self.readings_duplicate = Counter(
            "homewatch_gateway_readings_duplicate",
            "Readings a device handed over again (already queued or delivered once).",
            registry=r,
        )
        self.decode_errors = Counter(
            "homewatch_gateway_decode_errors", "Payloads that could not be decoded.", registry=r
        )
        self.readings_refused = Counter(
            "homewatch_gateway_readings_refused",
            "Readings refused because the outbox was full (left on their device).",
            registry=r,
        )
        self.readings_published = Counter(
            "homewatch_gateway_readings_published",
            "Readings acknowledged by the broker (PUBACK success).",
            registry=r,
        )
        self.publish_errors = Counter(
            "homewatch_gateway_publish_errors",
            "Publishes that failed (no connection, no PUBACK) or were refused by the broker.",
            ["reason"],
            registry=r,
        )
        self.publish_latency = Histogram(
            "homewatch_gateway_publish_latency_seconds",
            "Time from PUBLISH to a successful PUBACK, per message.",
            buckets=PUBLISH_LATENCY_BUCKETS,
            registry=r,
        )
        self.outbox_depth = Gauge(
            "homewatch_gateway_outbox_depth", "Readings waiting in the outbox.", registry=r
        )
        self.outbox_limit = Gauge(
            "homewatch_gateway_outbox_limit", "The outbox bound (0: unbounded).", registry=r
        )
        self.outbox_full = Gauge(
            "homewatch_gateway_outbox_full", "1 while the outbox is at its bound.", registry=r
        )
        self.mqtt_connected = Gauge(
            "homewatch_gateway_mqtt_connected", "1 while connected to the broker.", registry=r
        )
        self.ble_connects = Counter(
            "homewatch_gateway_ble_connects",
            "BLE sessions started (connected and identified).",
            ["kind"],
            registry=r,
        )
        self.ble_errors = Counter(
            "homewatch_gateway_ble_errors", "BLE sessions that ended in an error.", registry=r
        )
        self.device_battery = Gauge(
            "homewatch_gateway_device_battery_percent",
            "Battery level a device reported at its last connection.",
            ["device"],
            registry=r,
        )

    def exposition(self) -> bytes:
        """The text format, as the HTTP endpoint serves it."""
        return generate_latest(self.registry)

    @contextlib.contextmanager
    def serving(self, host: str, port: int) -> Iterator[int]:
        """Serve ``/metrics`` on ``host:port`` (0: any free port) until the block ends."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        bound = server.server_address[1]
        log.info("metrics on http://%s:%d/metrics", host, bound)
        try:
            yield bound
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
