"""``homewatch sim run``: the demo cohort's cuffs on a virtual radio served over TCP, for a
gateway in another process (``homewatch gateway run --ble-transport tcp-client:HOST:PORT``)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from device_simulators.clock import VirtualClock
from device_simulators.cohort import demo_cohort, demo_start
from device_simulators.radio import VirtualRadio
from device_simulators.runner import cuffs_on_radio, run_patient
from homewatch.wire import serial_device_key

log = logging.getLogger(__name__)


async def run_simulation(*, tcp_port: int, speed: float, days: int) -> None:
    start = demo_start(datetime.now(UTC), days)
    cohort = demo_cohort(start)
    clock = VirtualClock(start, speed)
    async with VirtualRadio() as radio, cuffs_on_radio(radio, cohort) as cuffs:
        port = await radio.serve_tcp(port=tcp_port)
        log.info("simulated cuffs reachable with --ble-transport tcp-client:127.0.0.1:%d", port)
        for member in cohort:
            c = member.cuff
            key = serial_device_key(c.manufacturer, c.model, c.serial_number)
            log.info(
                "%s measures with device %s (bind it from %s)",
                member.patient.patient_id,
                key,
                start.isoformat(),
            )
        async with asyncio.TaskGroup() as tg:
            for member, cuff in zip(cohort, cuffs, strict=True):
                tg.create_task(
                    run_patient(member, cuff, clock), name=f"patient-{member.patient.patient_id}"
                )
