"""The reference time simulated device clocks run on: a reading's moment, or the real clock.

A ``DeviceClock`` shows a linear function of its reference time (its wall time when it was
anchored plus the reference time elapsed since, scaled by its drift). Two things read it:

* the device itself, stamping a reading: the stamp must be what the clock showed at the reading's
  *true* time. The generator has no running clock at all, and on the virtual radio the virtual
  clock runs on while the runner catches up (at 3600x a 10 ms delay is 36 simulated seconds), so
  the runner pins the reference to the true time while it reads the clock (synchronously:
  nothing else can read it meanwhile);
* a collector over GATT (a gateway reading or setting Current Time). It lives in real time, so
  the reference is then the real clock. While the virtual clock still catches up, the device
  then looks like one whose patient measured for days while the gateway was away: its clock is
  as wrong as its offset and drift make it, its stored records are stamped in the past, and a
  clock the gateway sets stamps the following readings right (the line extends backwards).

Clocks are anchored at the run's start, like the generator's, so that a stamp in the ground truth
is the one the device puts on the air as long as nobody sets its clock::

    time = SimulationTime(start)
    clock = time.build_clock(ClockSpec(drift_ppm=40), tz)   # anchored at ``start``
    stamp = time.device_time(clock, reading.true_time)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from device_simulators.device_clock import DeviceClock

if TYPE_CHECKING:
    from device_simulators.devices import ClockSpec


def _real_now() -> datetime:
    return datetime.now(UTC)


class SimulationTime:
    def __init__(self, start: datetime, real: Callable[[], datetime] = _real_now) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.start = start
        self._real = real
        self._pinned: datetime | None = None

    def now(self) -> datetime:
        """The pinned moment while a device stamps a reading, else the real time."""
        return self._pinned if self._pinned is not None else self._real()

    @contextlib.contextmanager
    def pinned(self, when: datetime) -> Iterator[None]:
        if when.tzinfo is None:
            raise ValueError("a pinned time must be timezone-aware")
        previous, self._pinned = self._pinned, when
        try:
            yield
        finally:
            self._pinned = previous

    def build_clock(self, spec: ClockSpec, tz: ZoneInfo) -> DeviceClock:
        """A device clock on this reference, anchored at the start of the run."""
        with self.pinned(self.start):
            return spec.build(tz, self.now)

    def device_time(self, clock: DeviceClock, when: datetime) -> datetime:
        """What ``clock`` (built on this reference) shows at ``when``."""
        with self.pinned(when):
            return clock.now()
