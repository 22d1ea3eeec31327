"""A real gateway (``gateway.service.Gateway``) reading simulated devices over a bumble radio and
publishing to the test Mosquitto; what it accepted is collected for the test to check."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.ble import BleBackends
from gateway.bleak_bumble import BumbleCentral
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from homewatch.embedded.broker import BrokerEndpoint
from homewatch.wire import DeviceIdentity, Reading

WAIT = 20.0


async def eventually(check, timeout: float = WAIT, interval: float = 0.05):
    """Poll ``check`` (sync or async, truthy when done) until it holds; its last value."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(interval)


@dataclass
class RunningGateway:
    gateway: Gateway
    readings: list[Reading] = field(default_factory=list)
    progress: list[tuple[str, float | None]] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Any]:
        return [r for r in self.readings if r.kind == kind]


@contextlib.asynccontextmanager
async def running_gateway(
    central: BumbleCentral,
    broker: BrokerEndpoint,
    topic_root: str,
    outbox: Path,
    **settings: Any,
) -> AsyncIterator[RunningGateway]:
    """Run a gateway until the block ends (then cancel it and wait for it to stop)."""
    defaults: dict[str, Any] = {
        "gateway_id": "gw-ble",
        "mqtt_url": broker.url,
        "topic_root": topic_root,
        "outbox_path": outbox,
        "reconnect_min_seconds": 0.1,
        "reconnect_max_seconds": 0.5,
        "stored_records_quiet_seconds": 0.5,
        "meter_rest_seconds": 0.2,
        "transfer_timeout_seconds": 5.0,
    }
    running: RunningGateway

    async def on_reading(reading: Reading) -> None:
        running.readings.append(reading)

    def on_progress(device: DeviceIdentity, pressure: float | None) -> None:
        running.progress.append((device.device_key, pressure))

    gateway = Gateway(
        GatewaySettings(**(defaults | settings)),
        BleBackends(central.scanner_backend, central.client_backend),
        on_reading=on_reading,
        on_progress=on_progress,
    )
    running = RunningGateway(gateway)
    task = asyncio.create_task(gateway.run(), name="gateway")
    try:
        yield running
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
