"""Puts a cohort on a virtual radio and lets each patient measure on the virtual clock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from device_simulators.bp_cuff import BloodPressureCuff
from device_simulators.clock import VirtualClock
from device_simulators.cohort import CohortMember
from device_simulators.patients import Measurement
from device_simulators.radio import VirtualRadio

#: Body movement, cuff fit and irregular pulse detection (Blood Pressure Feature bits 0-2).
CUFF_FEATURES = 0x0007

OnMeasurement = Callable[[CohortMember, Measurement], None]


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
