"""What a simulated device is before it goes on the air: identity, owner, usage, clock, faults.

A ``DeviceSpec`` is pure data: the generator (``device_simulators.generate``) reads it to decide
what the device records and how its clock stamps it, and the runner (``device_simulators.runner``)
builds the bumble GATT server from it. Both build the device's clock with ``ClockSpec.build``,
so a time stamp in the ground truth is the one the device would put on the air.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo

from device_simulators.behaviour import Schedule
from device_simulators.device_clock import DeviceClock
from device_simulators.peripheral import PeripheralIdentity
from homewatch.wire import serial_device_key

DeviceType = Literal["cuff", "meter"]
GlucoseDisplayUnit = Literal["mg/dL", "mmol/L"]
#: Device faults a scenario can schedule; clock faults are fixed when the device is built.
FaultKind = Literal[
    "link_drop", "resend", "low_battery", "out_of_range", "clock_drift", "clock_unset"
]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "link_drop",
    "resend",
    "low_battery",
    "out_of_range",
    "clock_drift",
    "clock_unset",
)
#: Faults the runner acts out on a live device at their time (the rest shape the readings).
RUNTIME_FAULTS: frozenset[str] = frozenset({"link_drop", "resend", "low_battery"})
#: What the reading kinds are called per device type.
READING_KIND = {"cuff": "blood_pressure", "meter": "glucose"}


@dataclass(frozen=True, slots=True)
class ClockSpec:
    """A device's own wall clock as it is when the run starts (``DeviceClock`` arguments)."""

    offset: timedelta = timedelta(0)
    drift_ppm: float = 0.0
    unset: bool = False

    def build(self, tz: ZoneInfo, source: Callable[[], datetime]) -> DeviceClock:
        return DeviceClock(
            tz=tz, offset=self.offset, drift_ppm=self.drift_ppm, unset=self.unset, source=source
        )


@dataclass(frozen=True, slots=True)
class DeviceFault:
    """A fault of one device at ``at``.

    ``records``: for ``link_drop`` the records sent before the link drops (in the device's next
    transfer after ``at``: a meter's RACP report, a cuff's stored indications), for ``resend`` how
    many of the latest
    records a cuff sends again (byte for byte), for ``out_of_range`` how many readings from
    ``at`` on are out of range. ``level``: the battery percentage for ``low_battery``.
    """

    kind: FaultKind
    device_type: DeviceType
    at: datetime
    records: int = 1
    level: int = 10


@dataclass(frozen=True)
class DeviceSpec:
    """One simulated device.

    ``patient_id`` None: a device nobody in the cohort owns (a neighbour's, advertising
    nearby). ``clock`` None: the device exposes no clock and stamps the true local time.
    """

    type: DeviceType
    identity: PeripheralIdentity
    patient_id: str | None
    schedule: Schedule | None = None
    clock: ClockSpec | None = None
    battery_level: int = 90
    unit: GlucoseDisplayUnit = "mg/dL"
    tag_probability: float = 0.0
    control_solution_every_days: float | None = None
    faults: tuple[DeviceFault, ...] = field(default=())

    @cached_property
    def key(self) -> str:
        """The device key an administrator binds (``homewatch.wire.serial_device_key``)."""
        i = self.identity
        return serial_device_key(i.manufacturer, i.model, i.serial_number)

    @property
    def reading_kind(self) -> str:
        return READING_KIND[self.type]

    def runtime_faults(self) -> tuple[DeviceFault, ...]:
        """The faults the runner acts out on the live device, in time order."""
        return tuple(sorted((f for f in self.faults if f.kind in RUNTIME_FAULTS), key=_fault_time))


def _fault_time(fault: DeviceFault) -> datetime:
    return fault.at
