"""The gateway: BLE sessions → decode → durable outbox → MQTT, as one ``asyncio.TaskGroup``.

Beside the two data tasks (``ble``, ``forward``) run ``status`` (the retained status message and
the status file next to the outbox) and, with a local provisioning file, ``provisioning``. The
server's retained config topic is read through the MQTT client's subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bleak import BleakClient

from gateway.backoff import Backoff
from gateway.battery import read_battery_level
from gateway.ble import Allowlist, BleBackends, Session, open_backends, watch_devices
from gateway.clock_sync import ClockPolicy
from gateway.forwarder import forward_forever
from gateway.metrics import GatewayMetrics
from gateway.mqtt import MqttError, MqttPublisher, PublishRefused, Will
from gateway.outbox import HighWaterMark, Outbox, OutboxFull
from gateway.profiles import PROFILES, session_for
from gateway.provisioning import (
    LiveAllowlist,
    Provisioned,
    Provisioner,
    describe_changes,
    provisioned_cache_path,
)
from gateway.quirks import QuirkTable, load_quirk_table
from gateway.session_context import OnProgress, SessionContext
from gateway.settings import GatewaySettings
from gateway.status import GatewayStatus, StatusBoard, status_path, write_atomically
from gateway.topics import config_topic, status_topic
from homewatch.wire import DeviceIdentity, Reading, readings_topic

log = logging.getLogger(__name__)

OnReading = Callable[[Reading], Awaitable[None]]
#: At most one status message per this many seconds, however busy the gateway is.
STATUS_MIN_INTERVAL = 1.0
#: On shutdown, how long the final "offline" status may take.
FINAL_STATUS_TIMEOUT = 3.0


@dataclass
class GatewayCounters:
    received: int = 0
    queued: int = 0
    duplicates: int = 0
    decode_errors: int = 0
    #: Readings refused because the outbox was full (they stayed on their device).
    refused: int = 0


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
        self._on_progress = on_progress
        self.counters = GatewayCounters()
        self.outbox: Outbox | None = None
        self.status = StatusBoard(settings.gateway_id, settings.mqtt_url)
        self.metrics = GatewayMetrics(settings.gateway_id, self.status.version)
        #: Where the status file goes; the port metrics are served on, once running.
        self.status_file = status_path(settings.outbox_path)
        self.metrics_port: int | None = None
        # Loaded once, at start: a broken table stops the gateway before it reads anything.
        self._quirks: QuirkTable = load_quirk_table(settings.quirks_path)
        #: The settings in force: ``settings`` overlaid with the provisioned configuration.
        self.in_force = settings
        self._ctx = self._session_context(settings)
        #: What ``watch_devices`` consults on each detection; provisioning swaps its content.
        self.allowlist = LiveAllowlist(Allowlist.of(settings.allowed_devices))
        self.provisioner = Provisioner(
            settings, provisioned_cache_path(settings.outbox_path), self._apply_provisioned
        )
        self._full_reported = False
        self._mqtt: MqttPublisher | None = None

    async def run(self) -> None:
        """Run until cancelled."""
        s = self.settings
        # The last provisioned configuration before any device is read, even with no network.
        self.provisioner.load_cache()
        async with contextlib.AsyncExitStack() as stack:
            backends = await stack.enter_async_context(self._ble_backends())
            outbox = await stack.enter_async_context(
                Outbox(s.outbox_path, max_readings=s.outbox_max_readings)
            )
            self.outbox = outbox
            if s.metrics_port is not None:
                self.metrics_port = stack.enter_context(
                    self.metrics.serving(s.metrics_host, s.metrics_port)
                )
            publisher = self._mqtt = await stack.enter_async_context(self._publisher())
            publisher.on_connection_change(self._on_connection_change)
            publisher.subscribe(
                config_topic(s.gateway_id, s.topic_root),
                lambda _topic, payload: self.provisioner.from_server(payload),
            )
            log.info(
                "gateway %s (homewatch %s): outbox %s holds %d reading(s)",
                s.gateway_id,
                self.status.version,
                s.outbox_path,
                await outbox.depth(),
            )
            if self.allowlist.open:
                log.warning("no device allowlist: reading every health device in range")
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(
                        watch_devices(
                            backends,
                            self._session_for,
                            services=tuple(PROFILES),
                            allowlist=self.allowlist,  # type: ignore[arg-type]  # duck-typed
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
                            observer=self,
                        ),
                        name="forward",
                    )
                    tg.create_task(self._report_status(publisher, outbox), name="status")
                    if s.provisioning_file is not None:
                        tg.create_task(
                            self.provisioner.watch_file(s.provisioning_file), name="provisioning"
                        )
            finally:
                await self._final_status(publisher, outbox)

    def _publisher(self) -> MqttPublisher:
        s = self.settings
        will = GatewayStatus.will(s.gateway_id, self.status.version)
        return MqttPublisher(
            s.mqtt_url,
            client_id=f"gateway-{s.gateway_id}",
            protocol=s.mqtt_protocol,
            keepalive=s.mqtt_keepalive_seconds,
            security=s.mqtt_security(),
            will=Will(status_topic(s.gateway_id, s.topic_root), will.to_bytes()),
            max_inflight=s.mqtt_max_inflight,
            backoff=self._backoff(),
        )

    def _session_for(self, client: BleakClient) -> Session | None:
        serve = session_for(client)
        if serve is None:
            return None
        kind = serve.__name__.removeprefix("serve_")  # cuff, meter, weight_scale, ...

        async def session(c: BleakClient, identity: DeviceIdentity) -> float | None:
            self.metrics.ble_connects.labels(kind).inc()
            self.status.device_connected(identity, kind)
            battery = await read_battery_level(c, identity.device_key)
            if battery is not None:
                self.status.battery(identity, battery)
                self.metrics.device_battery.labels(identity.device_key).set(battery)
            try:
                return await serve(c, identity, self._ctx)  # the context in force now
            except Exception as exc:
                self.metrics.ble_errors.inc()
                self.status.session_failed(identity, f"{type(exc).__name__}: {exc}")
                raise

        return session

    def _backoff(self) -> Backoff:
        return Backoff(self.settings.reconnect_min_seconds, self.settings.reconnect_max_seconds)

    def _session_context(self, s: GatewaySettings) -> SessionContext:
        return SessionContext(
            sink=self,
            quirks=self._quirks,
            clock=ClockPolicy(
                ZoneInfo(s.device_timezone),
                timedelta(seconds=s.clock_drift_bound_seconds),
                s.set_device_clocks,
            ),
            stored_records_quiet=s.stored_records_quiet_seconds,
            meter_rest=s.meter_rest_seconds,
            transfer_timeout=s.transfer_timeout_seconds,
            on_progress=self._on_progress,
        )

    @contextlib.asynccontextmanager
    async def _ble_backends(self) -> AsyncIterator[BleBackends]:
        if self._backends is not None:
            yield self._backends
        else:
            async with open_backends(self.settings.ble_transport) as backends:
                yield backends

    # --- provisioning ------------------------------------------------------------------------

    def _apply_provisioned(self, provisioned: Provisioned) -> None:
        new = provisioned.settings
        changes = describe_changes(self.in_force, new)
        self.status.config(provisioned.revision, provisioned.source, provisioned.error)
        if not changes:
            return
        log.info(
            "provisioned configuration (revision %s, %s) applied: %s",
            provisioned.revision,
            provisioned.source or "settings",
            changes,
        )
        if "pair_devices" in changes:
            # gateway.ble.watch_devices takes ``pair`` once, when it starts.
            log.warning("pair_devices=%s takes effect at the next restart", new.pair_devices)
        self.in_force = new
        self.allowlist.replace(Allowlist.of(new.allowed_devices))
        self._ctx = self._session_context(new)

    # --- status ------------------------------------------------------------------------------

    def _on_connection_change(self, connected: bool) -> None:
        error = None if connected or self._mqtt is None else self._mqtt.last_error
        self.status.mqtt(connected, error)
        self.metrics.mqtt_connected.set(1 if connected else 0)
        if connected:
            self.status.changed.set()  # a fresh retained status on every (re)connection

    async def _report_status(self, publisher: MqttPublisher, outbox: Outbox) -> None:
        """Write the status file and publish the retained status: soon after a change, and
        every ``status_interval_seconds`` anyway (outbox depth, liveness)."""
        interval = self.settings.status_interval_seconds
        while True:
            self.status.changed.clear()
            self.status.mqtt(publisher.connected, publisher.last_error)
            await self._write_status(publisher, outbox, "online")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.status.changed.wait(), interval)
            await asyncio.sleep(STATUS_MIN_INTERVAL)

    async def _write_status(
        self, publisher: MqttPublisher, outbox: Outbox, state: str, timeout: float = 10.0
    ) -> None:
        try:
            stats = await outbox.stats()
        except Exception:
            log.exception("cannot read the outbox for the status")
            stats = None
        if stats is not None:
            self.metrics.outbox_depth.set(stats.depth)
            self.metrics.outbox_limit.set(stats.limit or 0)
            self._report_fullness(stats.full, stats.depth)
        status = self.status.snapshot(
            state,  # type: ignore[arg-type]
            stats,
            outbox.stored_beyond_limit,
        )
        payload = status.to_bytes()
        try:
            await asyncio.to_thread(write_atomically, self.status_file, payload)
        except OSError as exc:
            log.error("cannot write the status file %s: %s", self.status_file, exc)
        if publisher.connected:
            s = self.settings
            try:
                await publisher.publish(
                    status_topic(s.gateway_id, s.topic_root), payload, retain=True, timeout=timeout
                )
            except MqttError as exc:
                log.warning("cannot publish the gateway status: %s", exc)

    async def _final_status(self, publisher: MqttPublisher, outbox: Outbox) -> None:
        """A clean stop says "offline" itself, with the last figures (no Will is sent then)."""
        self.status.mqtt_connected = False  # what the message means: the gateway is gone
        try:
            await asyncio.wait_for(
                self._write_status(publisher, outbox, "offline", timeout=FINAL_STATUS_TIMEOUT),
                FINAL_STATUS_TIMEOUT + 1,
            )
        except (TimeoutError, asyncio.CancelledError):
            log.warning("the final status could not be published")

    def _report_fullness(self, full: bool, depth: int) -> None:
        """Loud on the way in (error), noted on the way out."""
        self.metrics.outbox_full.set(1 if full else 0)
        self.metrics.outbox_depth.set(depth)
        if full and not self._full_reported:
            log.error(
                "OUTBOX FULL: %d reading(s) queued (limit %s); new readings are refused and stay "
                "on their devices until the broker takes the backlog",
                depth,
                self.settings.outbox_max_readings,
            )
        elif not full and self._full_reported:
            log.warning("the outbox has room again (%d reading(s) queued)", depth)
        if full != self._full_reported:
            self._full_reported = full
            self.status.changed.set()

    # --- ForwardObserver ---------------------------------------------------------------------

    def published(self, readings: int, seconds: float) -> None:
        self.metrics.readings_published.inc(readings)
        self.metrics.publish_latency.observe(seconds)
        self.status.published_batch(readings)
        if self.outbox is not None:
            self._report_fullness(self.outbox.full, self.outbox.queued)

    def publish_failed(self, error: MqttError) -> None:
        reason = "refused" if isinstance(error, PublishRefused) else "failed"
        self.metrics.publish_errors.labels(reason).inc()

    # --- ReadingSink: what the device sessions hand over ------------------------------------

    def has_room(self) -> bool:
        """False while the outbox is at its bound: a session that can leave its records on the
        device (a cuff that has not subscribed yet) should do so."""
        return self.outbox is not None and not self.outbox.full

    async def accept(
        self,
        readings: list[Reading],
        device: DeviceIdentity,
        *,
        mark: HighWaterMark | None = None,
        beyond_limit: bool | None = None,
    ) -> int:
        """Queue ``readings`` durably; how many were new.

        When the outbox is full, raises ``OutboxFull`` (nothing stored) for readings the device
        can give again, and stores the others past the bound. ``beyond_limit=None`` decides from
        ``mark``: a meter's records (read over RACP from a high-water mark that then does not
        advance) can be read again; a cuff's confirmed indication cannot.
        """
        outbox = self._require_outbox()
        self.counters.received += len(readings)
        keep_anyway = (mark is None) if beyond_limit is None else beyond_limit
        try:
            added = await outbox.put_many(
                readings, device_key=device.device_key, mark=mark, beyond_limit=keep_anyway
            )
        except OutboxFull as exc:
            self.counters.refused += exc.refused
            self.metrics.readings_refused.inc(exc.refused)
            self.status.refused_readings(exc.refused)
            self._report_fullness(True, exc.depth)
            log.error("%s: %s", device.device_key, exc)
            raise
        self.counters.queued += len(added)
        self.counters.duplicates += len(readings) - len(added)
        if len(readings) > len(added):
            self.metrics.readings_duplicate.inc(len(readings) - len(added))
        if added:
            for kind, count in Counter(r.kind for r in added).items():
                self.metrics.readings_decoded.labels(kind).inc(count)
            self.status.readings_queued(device, len(added), max(r.received_at for r in added))
            self._report_fullness(outbox.full, outbox.queued)
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
        self.metrics.decode_errors.inc()
        await self._require_outbox().reject(
            device.device_key, characteristic, payload, reason, received_at
        )

    async def high_water_mark(self, device: DeviceIdentity) -> HighWaterMark | None:
        return await self._require_outbox().high_water_mark(device.device_key)

    def _require_outbox(self) -> Outbox:
        if self.outbox is None:
            raise RuntimeError("the gateway is not running")
        return self.outbox
