"""``homewatch sim``: a scenario's cohort on a virtual radio served over TCP, for a gateway in
another process (``homewatch gateway run --ble-transport tcp-client:HOST:PORT``), and the pure
generator's output as files.

``run_simulation`` generates the run (the same scenario and seed always give the same readings),
writes the ground truth if asked, puts every device on the radio, serves it over TCP and plays
the readings on a virtual clock that starts ``days`` ago and runs ``speed`` times faster than real
time. When every reading has been taken the devices stay on the air (for ``linger`` seconds, or
until interrupted) so that the gateway collects what they still hold.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from device_simulators.clock import VirtualClock
from device_simulators.cohort import demo_start
from device_simulators.generate import Generated, generate
from device_simulators.radio import VirtualRadio
from device_simulators.runner import PlayProgress, devices_on_radio, play
from device_simulators.scenario import Scenario, load_scenario
from device_simulators.sim_time import SimulationTime
from device_simulators.truth import write_lines

log = logging.getLogger(__name__)

DEFAULT_SCENARIO = "demo"
#: Above this many devices a radio run is slow to set up: say so.
MANY_DEVICES = 200


@dataclass(frozen=True, slots=True)
class SimulationOptions:
    tcp_port: int = 9001
    speed: float = 3600.0
    days: int | None = None
    scenario: str | Path = DEFAULT_SCENARIO
    seed: int | None = None
    truth: Path | None = None
    #: Seconds the devices stay on the air after the last reading (None: until interrupted).
    linger: float | None = None


def simulated_start(scenario: Scenario, days: float, now: datetime | None = None) -> datetime:
    """Where a run starts: ``days`` ago, just before the morning readings (06:58 in the
    scenario's zone), a day earlier if the run would otherwise end after ``now``: the virtual
    clock never runs ahead of the real one, so a window ending in the future would be played
    in real time."""
    now = (now or datetime.now(UTC)).astimezone(scenario.timezone)
    start = demo_start(now, math.ceil(days))
    if start + timedelta(days=days) > now:
        start = demo_start(now, math.ceil(days) + 1)
    return start.astimezone(UTC)


async def run_simulation(options: SimulationOptions) -> PlayProgress:
    """Generate, put the devices on the air, play the run; returns how it went."""
    scenario = load_scenario(options.scenario)
    days = options.days or scenario.days
    start = simulated_start(scenario, days)
    run = generate(scenario, start, days, seed=options.seed)
    log.info(
        "scenario %s (seed %d): %d patients, %d devices, %d readings from %s to %s",
        scenario.name,
        run.seed,
        len(run.cohort.patients),
        len(run.devices),
        run.reading_count(),
        run.start.isoformat(),
        run.end.isoformat(),
    )
    if options.truth is not None:
        lines = run.write_truth(options.truth)
        log.info("ground truth: %d lines in %s", lines, options.truth)
    if len(run.devices) > MANY_DEVICES:
        log.warning(
            "%d devices on one virtual radio: setting them up takes a while", len(run.devices)
        )
    time = SimulationTime(run.start)
    async with (
        VirtualRadio() as radio,
        devices_on_radio(radio, run.devices, timezone=scenario.timezone, time=time) as live,
    ):
        port = await radio.serve_tcp(port=options.tcp_port)
        log.info("simulated devices reachable with --ble-transport tcp-client:127.0.0.1:%d", port)
        _log_bindings(run)
        if any(d.type == "meter" for d in run.devices) and options.speed > 1:
            log.info(
                "a gateway leaves a meter alone for meter_rest_seconds after each transfer "
                "(300 s by default: %.0f simulated hours at x%g); for accelerated runs set "
                "HOMEWATCH_GATEWAY_METER_REST_SECONDS=1",
                300 * options.speed / 3600, options.speed,
            )  # fmt: skip
        clock = VirtualClock(run.start, options.speed)
        progress = await play(run, live, clock, on_progress=_progress_logger(run))
        log.info(
            "all %d readings taken (%d records re-sent, %d faults, %d errors); the devices stay "
            "on the air %s",
            progress.taken,
            progress.resent,
            progress.faults,
            progress.errors,
            "until interrupted" if options.linger is None else f"for {options.linger:g} s",
        )
        if options.linger is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(options.linger)
        return progress


def _log_bindings(run: Generated) -> None:
    for patient in run.cohort.patients:
        for device in patient.devices:
            log.info(
                "%s measures with device %s (bind it from %s)",
                patient.patient_id,
                device.key,
                run.start.isoformat(),
            )
    for device in run.cohort.unknown_devices:
        log.info("device %s belongs to nobody in the cohort (advertising nearby)", device.key)


def _progress_logger(run: Generated) -> Callable[[PlayProgress], None]:
    total_days = (run.end - run.start) / timedelta(days=1)

    def report(progress: PlayProgress) -> None:
        now = progress.now or run.start
        day = min((now - run.start) / timedelta(days=1), total_days)
        log.info(
            "day %.1f of %g (%s): %d of %d readings taken, %d re-sent, %d faults",
            day,
            total_days,
            now.strftime("%Y-%m-%d %H:%M UTC"),
            progress.taken,
            progress.total,
            progress.resent,
            progress.faults,
        )

    return report


def write_generated(
    run: Generated, *, truth: Path | None = None, readings: Path | None = None
) -> dict[str, Any]:
    """Write the truth and/or every reading (JSON lines); returns a summary."""
    summary: dict[str, Any] = {
        "scenario": run.scenario.name,
        "seed": run.seed,
        "start": run.start.isoformat(),
        "end": run.end.isoformat(),
        "patients": len(run.cohort.patients),
        "devices": len(run.devices),
        "measurements": run.reading_count(),
        "events": len(run.truth),
    }
    if truth is not None:
        summary["truth_lines"] = run.write_truth(truth)
    if readings is not None:
        with readings.open("w", encoding="utf-8") as f:
            summary["reading_lines"] = write_lines(f, (r.to_json() for r in run.all_readings()))
    return summary
