"""Puts simulated devices on a virtual radio and plays their readings on the virtual clock.

Two ways in:

* ``devices_on_radio`` + ``play``: a generated run (``device_simulators.generate``) played to
  live bumble GATT servers, one task per device: at each reading's true time the cuff measures
  (indicating it if a gateway is subscribed, keeping it otherwise) or the meter stores a record;
  at each fault's time the fault is acted out through the simulators' public API (the link
  drops during the device's next transfer, a cuff sends records again, its battery runs low).
  Time stamps come from the device's own clock at the reading's
  true time, so a gateway that sets a clock changes the stamps that follow, as on a real device.
* ``cuffs_on_radio`` + ``run_patient``: the demo's cuffs, each patient measuring forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from device_simulators.bp_cuff import BloodPressureCuff
from device_simulators.clock import VirtualClock
from device_simulators.cohort import CohortMember
from device_simulators.device_clock import DeviceClock
from device_simulators.devices import DeviceFault, DeviceSpec
from device_simulators.generate import Generated
from device_simulators.glucometer import Glucometer
from device_simulators.patients import Measurement
from device_simulators.radio import VirtualRadio
from device_simulators.readings import SimulatedReading
from device_simulators.sim_time import SimulationTime
from device_simulators.vendor_quirks import encode_blood_pressure
from gateway.codec.glucose import GlucoseFeature, GlucoseFeatureFlag
from gateway.quirks import DeviceQuirks, load_quirk_table

log = logging.getLogger(__name__)

#: Body movement, cuff fit and irregular pulse detection (Blood Pressure Feature bits 0-2).
CUFF_FEATURES = 0x0007
#: What the simulated meters can tell: low battery, results beyond their range.
METER_FEATURES = GlucoseFeature(
    GlucoseFeatureFlag.LOW_BATTERY_DETECTION | GlucoseFeatureFlag.SENSOR_RESULT_HIGH_LOW_DETECTION
)
#: Real seconds between two progress reports of ``play``.
PROGRESS_EVERY = 10.0

OnMeasurement = Callable[[CohortMember, Measurement], None]
Peripheral = BloodPressureCuff | Glucometer


# --- the demo's cuffs ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def cuffs_on_radio(
    radio: VirtualRadio, cohort: list[CohortMember]
) -> AsyncIterator[list[BloodPressureCuff]]:
    """One advertising cuff per cohort member, in cohort order."""
    async with contextlib.AsyncExitStack() as stack:
        cuffs = []
        for member in cohort:
            device = await radio.peripheral_device(member.cuff.name)
            cuff = BloodPressureCuff(device, member.cuff, features=CUFF_FEATURES, battery_level=90)
            cuffs.append(await stack.enter_async_context(cuff))
        yield cuffs


async def run_patient(
    member: CohortMember,
    cuff: BloodPressureCuff,
    clock: VirtualClock,
    on_measurement: OnMeasurement | None = None,
) -> None:
    """The patient measures on schedule, forever; the cuff keeps what it cannot deliver yet."""
    for m in member.patient.measurements(clock.start):
        await clock.sleep_until(m.at)
        if on_measurement is not None:
            on_measurement(member, m)
        await cuff.measure(m.encode())


# --- generated runs -----------------------------------------------------------------------------


@dataclass
class LiveDevices:
    """The running simulators of a run, by device key, and the time their clocks run on."""

    time: SimulationTime
    specs: dict[str, DeviceSpec]
    peripherals: dict[str, Peripheral]
    clocks: dict[str, DeviceClock]
    quirks: dict[str, DeviceQuirks]
    #: Faults waiting for their moment (a cuff's link drop waits for the next transfer);
    #: cancelled when the devices go off the air.
    pending: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    def cuff(self, key: str) -> BloodPressureCuff:
        peripheral = self.peripherals[key]
        if not isinstance(peripheral, BloodPressureCuff):
            raise TypeError(f"{key} is not a cuff")
        return peripheral

    def meter(self, key: str) -> Glucometer:
        peripheral = self.peripherals[key]
        if not isinstance(peripheral, Glucometer):
            raise TypeError(f"{key} is not a meter")
        return peripheral

    def stamp(self, reading: SimulatedReading) -> datetime:
        """The device's time stamp for ``reading``: its live clock at the true time."""
        clock = self.clocks.get(reading.device_key)
        if clock is None:
            return reading.device_time
        return self.time.device_time(clock, reading.true_time).replace(microsecond=0)


@contextlib.asynccontextmanager
async def devices_on_radio(
    radio: VirtualRadio,
    devices: Sequence[DeviceSpec],
    *,
    timezone: ZoneInfo,
    time: SimulationTime,
) -> AsyncIterator[LiveDevices]:
    """Every device advertising on ``radio`` (cuffs and meters, quirky models as the gateway's
    quirk table describes them), clocks anchored at the start of ``time`` in ``timezone``."""
    table = load_quirk_table()
    live = LiveDevices(time, {}, {}, {}, {})
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(_cancel, live.pending)
        for spec in devices:
            quirks = table.for_device(spec.identity.manufacturer, spec.identity.model)
            clock = None if spec.clock is None else time.build_clock(spec.clock, timezone)
            bumble_device = await radio.peripheral_device(spec.identity.name)
            peripheral: Peripheral
            if spec.type == "cuff":
                peripheral = BloodPressureCuff(
                    bumble_device,
                    spec.identity,
                    features=CUFF_FEATURES,
                    battery_level=spec.battery_level,
                    clock=clock,
                )
            else:
                peripheral = Glucometer(
                    bumble_device,
                    spec.identity,
                    feature=METER_FEATURES,
                    clock=clock,
                    clock_characteristic="2A08"
                    if quirks.clock_characteristic == "2A08"
                    else "2A2B",
                    sequence_numbers="descending"
                    if quirks.glucose_sequence_descending
                    else "ascending",
                )
            live.peripherals[spec.key] = await stack.enter_async_context(peripheral)
            live.specs[spec.key] = spec
            live.quirks[spec.key] = quirks
            if clock is not None:
                live.clocks[spec.key] = clock
        log.info("%d simulated devices advertising", len(devices))
        yield live


@dataclass
class PlayProgress:
    """How far ``play`` got: readings taken of the total, re-sent records, faults acted out."""

    total: int
    taken: int = 0
    resent: int = 0
    faults: int = 0
    errors: int = 0
    records: Counter[str] = field(default_factory=Counter)  # per device key: readings + resent
    now: datetime | None = None

    @property
    def done(self) -> bool:
        return self.taken >= self.total


OnProgress = Callable[[PlayProgress], None]


async def play(
    run: Generated,
    live: LiveDevices,
    clock: VirtualClock,
    *,
    on_progress: OnProgress | None = None,
    progress_every: float = PROGRESS_EVERY,
) -> PlayProgress:
    """Play every reading and fault of ``run`` to the live devices on ``clock``; returns when
    all have been played (the devices keep what no gateway collected)."""
    progress = PlayProgress(total=run.reading_count())
    reporter = None
    if on_progress is not None:
        reporter = asyncio.create_task(_report(progress, clock, on_progress, progress_every))
    try:
        async with asyncio.TaskGroup() as tg:
            for spec in run.devices:
                readings = run.readings.get(spec.key, ())
                faults = [f for f in spec.runtime_faults() if f.at < run.end]
                if readings or faults:
                    tg.create_task(
                        _play_device(spec, readings, faults, live, clock, progress),
                        name=f"device-{spec.identity.serial_number}",
                    )
    finally:
        if reporter is not None:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
    progress.now = clock.now()
    if on_progress is not None:
        on_progress(progress)
    return progress


async def _report(
    progress: PlayProgress, clock: VirtualClock, on_progress: OnProgress, every: float
) -> None:
    while True:
        await asyncio.sleep(every)
        progress.now = clock.now()
        on_progress(progress)


async def _play_device(
    spec: DeviceSpec,
    readings: Sequence[SimulatedReading],
    faults: Sequence[DeviceFault],
    live: LiveDevices,
    clock: VirtualClock,
    progress: PlayProgress,
) -> None:
    """One device's timeline: readings and faults in time order (a reading before a fault at
    the same moment)."""
    timeline: list[tuple[datetime, int, SimulatedReading | DeviceFault]] = [
        *((r.true_time, 0, r) for r in readings),
        *((f.at, 1, f) for f in faults),
    ]
    timeline.sort(key=lambda item: (item[0], item[1]))
    history: list[bytes] = []
    for at, _, item in timeline:
        await clock.sleep_until(at)
        try:
            if isinstance(item, SimulatedReading):
                await _take(spec, item, live, history)
                progress.taken += 1
                progress.records[spec.key] += 1
            else:
                resent = await _fault(spec, item, live, history)
                progress.faults += 1
                progress.resent += resent
                progress.records[spec.key] += resent
        except Exception:
            # A device that misbehaves is logged and goes on, like the rest of the cohort.
            progress.errors += 1
            log.exception("device %s: playing %s at %s failed", spec.key, item, at.isoformat())


async def _take(
    spec: DeviceSpec, reading: SimulatedReading, live: LiveDevices, history: list[bytes]
) -> None:
    stamp = live.stamp(reading)
    if spec.type == "cuff":
        payload = encode_blood_pressure(reading.blood_pressure(stamp), live.quirks[spec.key])
        history.append(payload)
        await live.cuff(spec.key).measure(payload)
    else:
        measurement, context = reading.glucose(stamp)
        live.meter(spec.key).add_record(measurement, context)


async def _fault(
    spec: DeviceSpec, fault: DeviceFault, live: LiveDevices, history: list[bytes]
) -> int:
    """Act out one fault; returns how many records it re-sent."""
    log.info("device %s: fault %s (%d)", spec.key, fault.kind, fault.records)
    if fault.kind == "link_drop":
        if spec.type == "meter":
            live.meter(spec.key).drop_link_after(fault.records)
        else:
            live.spawn(
                _drop_cuff_link(live.cuff(spec.key), fault.records),
                f"link-drop-{spec.identity.serial_number}",
            )
        return 0
    if fault.kind == "resend":
        again = history[-fault.records :] if fault.records else []
        for payload in again:
            await live.cuff(spec.key).measure(payload)
        return len(again)
    if fault.kind == "low_battery" and spec.type == "cuff":
        await live.cuff(spec.key).set_battery_level(fault.level)
    # A meter's low battery is in its readings' sensor status (the generator put it there).
    return 0


#: How often a pending cuff link drop looks whether a central connected.
LINK_DROP_POLL = 0.005
#: With nothing (left) to send, the link drops this long after the connection: dropping it
#: while the central still sets the connection up trips bumble's host on the other side.
LINK_DROP_SETTLE = 1.0


async def _drop_cuff_link(cuff: BloodPressureCuff, records: int) -> None:
    """Drop the cuff's link during its next transfer: once ``records`` stored records went
    out (or, with fewer to send, once the connection has settled) while a central is connected.

    Only the public API is used, so the transfer is watched from the event loop: on a local
    link one indication and its confirmation take a few loop turns, so the watcher looks at
    every turn (``sleep(0)``) while the central is connected, and drops the link within a
    record of the count asked (the cuff simulator has no ``drop_link_after`` of its own)."""
    loop = asyncio.get_running_loop()
    while not cuff.is_connected:
        await asyncio.sleep(LINK_DROP_POLL)
    held, connected_at = cuff.stored_count, loop.time()
    while cuff.is_connected:
        sent = held - cuff.stored_count
        settled = loop.time() - connected_at >= LINK_DROP_SETTLE
        if sent >= max(records, 1) or (settled and (sent >= records or cuff.stored_count == 0)):
            log.info("cuff %s: dropping the link after %d record(s)", cuff.identity.name, sent)
            await cuff.disconnect()
            return
        await asyncio.sleep(0)


async def _cancel(tasks: set[asyncio.Task[None]]) -> None:
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
