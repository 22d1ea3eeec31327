"""The gateway: BLE sessions → decode → durable outbox → MQTT, as one ``asyncio.TaskGroup``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bleak import BleakClient

from gateway import profiles
from gateway.backoff import Backoff
from gateway.ble import Allowlist, BleBackends, Session, open_backends, watch_devices
from gateway.clock_sync import ClockPolicy
from gateway.forwarder import forward_forever
from gateway.mqtt import MqttPublisher
from gateway.outbox import HighWaterMark, Outbox
from gateway.quirks import load_quirk_table
from gateway.session_context import OnProgress, SessionContext
from gateway.settings import GatewaySettings
from homewatch.wire import DeviceIdentity, Reading, readings_topic

log = logging.getLogger(__name__)

OnReading = Callable[[Reading], Awaitable[None]]


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
        on_progress: OnProgress | None = None,
    ) -> None:
        self.settings = settings
        self._backends = backends
        self._on_reading = on_reading
        self.counters = GatewayCounters()
        self.outbox: Outbox | None = None
        s = settings
        # Loaded once, at start: a broken table stops the gateway before it reads anything.
        self._ctx = SessionContext(
            sink=self,
            quirks=load_quirk_table(s.quirks_path),
            clock=ClockPolicy(
                ZoneInfo(s.device_timezone),
                timedelta(seconds=s.clock_drift_bound_seconds),
                s.set_device_clocks,
            ),
            stored_records_quiet=s.stored_records_quiet_seconds,
            meter_rest=s.meter_rest_seconds,
            transfer_timeout=s.transfer_timeout_seconds,
            on_progress=on_progress,
        )
        self._allowlist = Allowlist.of(s.allowed_devices)

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
            if self._allowlist.open:
                log.warning("no device allowlist: reading every health device in range")
            tg.create_task(
                watch_devices(
                    backends,
                    self._session_for,
                    services=tuple(profiles.PROFILES),
                    allowlist=self._allowlist,
                    backoff=self._backoff(),
                    pair=s.pair_devices,
                ),
                name="ble",
            )
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

    def _session_for(self, client: BleakClient) -> Session | None:
        session = profiles.session_for(client)
        if session is None:
            return None
        return lambda c, identity: session(c, identity, self._ctx)

    def _backoff(self) -> Backoff:
        return Backoff(self.settings.reconnect_min_seconds, self.settings.reconnect_max_seconds)

    @contextlib.asynccontextmanager
    async def _ble_backends(self) -> AsyncIterator[BleBackends]:
        if self._backends is not None:
            yield self._backends
        else:
            async with open_backends(self.settings.ble_transport) as backends:
                yield backends

    # --- ReadingSink: what the device sessions hand over ------------------------------------

    async def accept(
        self,
        readings: list[Reading],
        device: DeviceIdentity,
        *,
        mark: HighWaterMark | None = None,
    ) -> int:
        outbox = self._require_outbox()
        self.counters.received += len(readings)
        added = await outbox.put_many(readings, device_key=device.device_key, mark=mark)
        self.counters.queued += len(added)
        self.counters.duplicates += len(readings) - len(added)
        if self._on_reading is not None:
            for reading in added:
                await self._on_reading(reading)
        return len(added)

    async def reject(
        self,
        device: DeviceIdentity,
        characteristic: str,
        payload: bytes,
        reason: str,
        received_at: datetime,
    ) -> None:
        self.counters.received += 1
        self.counters.decode_errors += 1
        await self._require_outbox().reject(
            device.device_key, characteristic, payload, reason, received_at
        )

    async def high_water_mark(self, device: DeviceIdentity) -> HighWaterMark | None:
        return await self._require_outbox().high_water_mark(device.device_key)

    def _require_outbox(self) -> Outbox:
        if self.outbox is None:
            raise RuntimeError("the gateway is not running")
        return self.outbox
