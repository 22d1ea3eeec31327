"""The gateway: BLE sessions → decode → durable outbox → MQTT, as one ``asyncio.TaskGroup``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from gateway.backoff import Backoff
from gateway.ble import BleBackends, Received, open_backends, watch_cuffs
from gateway.codec import BloodPressureMeasurement, DecodeError
from gateway.forwarder import forward_forever
from gateway.mqtt import MqttPublisher
from gateway.outbox import Outbox
from gateway.readings import blood_pressure_reading
from gateway.settings import GatewaySettings
from homewatch.wire import BloodPressureReading, readings_topic

log = logging.getLogger(__name__)

OnReading = Callable[[BloodPressureReading], Awaitable[None]]


@dataclass
class GatewayCounters:
    received: int = 0
    queued: int = 0
    duplicates: int = 0
    decode_errors: int = 0


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        backends: BleBackends | None = None,
        *,
        on_reading: OnReading | None = None,
    ) -> None:
        self.settings = settings
        self._backends = backends
        self._on_reading = on_reading
        self._tz = ZoneInfo(settings.device_timezone)
        self.counters = GatewayCounters()
        self.outbox: Outbox | None = None

    async def run(self) -> None:
        """Run until cancelled."""
        s = self.settings
        async with (
            self._ble_backends() as backends,
            Outbox(s.outbox_path) as outbox,
            MqttPublisher(
                s.mqtt_url, client_id=f"gateway-{s.gateway_id}", protocol=s.mqtt_protocol
            ) as publisher,
            asyncio.TaskGroup() as tg,
        ):
            self.outbox = outbox
            log.info(
                "gateway %s: outbox %s holds %d reading(s)",
                s.gateway_id,
                s.outbox_path,
                await outbox.depth(),
            )
            tg.create_task(watch_cuffs(backends, self._handle, backoff=self._backoff()), name="ble")
            tg.create_task(
                forward_forever(
                    outbox,
                    publisher,
                    gateway_id=s.gateway_id,
                    topic=readings_topic(s.gateway_id, s.topic_root),
                    batch_size=s.batch_size,
                    backoff=self._backoff(),
                ),
                name="forward",
            )

    def _backoff(self) -> Backoff:
        return Backoff(self.settings.reconnect_min_seconds, self.settings.reconnect_max_seconds)

    @contextlib.asynccontextmanager
    async def _ble_backends(self) -> AsyncIterator[BleBackends]:
        if self._backends is not None:
            yield self._backends
        else:
            async with open_backends(self.settings.ble_transport) as backends:
                yield backends

    async def _handle(self, received: Received) -> None:
        self.counters.received += 1
        assert self.outbox is not None
        try:
            measurement = BloodPressureMeasurement.from_bytes(received.payload)
        except DecodeError as exc:
            # Not a measurement we can read: counted, logged with its hex, kept aside, never sent.
            self.counters.decode_errors += 1
            log.error("%s: %s", received.device.device_key, exc)
            await self.outbox.reject(
                received.device.device_key, received.characteristic, received.payload,
                exc.reason, received.received_at,
            )  # fmt: skip
            return
        reading = blood_pressure_reading(
            measurement, received.payload, received.device, received.received_at, self._tz
        )
        if await self.outbox.put(reading):
            self.counters.queued += 1
        else:
            self.counters.duplicates += 1
        if self._on_reading is not None:
            await self._on_reading(reading)
