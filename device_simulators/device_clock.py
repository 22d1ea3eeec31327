"""A simulated device's own wall clock: wrong, unset, drifting, and settable like a real one.

Health devices keep a naive local wall clock (BLE Date Time has no zone) that nobody sets
reliably: it was set once in some zone, it drifts by tens of ppm, and after a battery change it
restarts at a fixed date (2000-01-01 here) until a collector writes Current Time. The gateway has
to cope with all of that, so the simulators expose their clock through ``current_time``.

The clock is a free-running counter, like the device's RTC: ``now()`` is the wall time it
showed when it was last anchored (construction or ``set()``) plus the time elapsed on
``source`` since then, scaled by the drift. It does **not** follow daylight-saving changes of
``tz`` after it was anchored (cuffs and meters do not know the rules): ``tz`` only decides what
the clock shows when it starts from ``source``::

    clock = DeviceClock(tz=ZoneInfo("Europe/Berlin"), offset=timedelta(hours=2), drift_ppm=40)
    clock.now()                           # naive: Berlin time + 2 h, gaining 40 µs a second
    clock.set(datetime(2026, 3, 14, 9, 0))  # what a Current Time write does
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

#: Where an unset clock starts (what real meters show after a battery change).
UNSET_EPOCH = datetime(2000, 1, 1)
UTC_ZONE = ZoneInfo("UTC")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DeviceClock:
    """A device's own wall clock (naive local time, like BLE Date Time).

    Args:
        tz: the zone the device was set in: at construction it shows ``source()`` in ``tz``.
        offset: how wrong it is (added to what it would show), e.g. ``timedelta(hours=2)``.
        drift_ppm: parts per million it runs fast (+) or slow (-) relative to ``source``.
        unset: start at ``UNSET_EPOCH`` (2000-01-01 00:00:00, plus ``offset``) instead of the
            real time, as after a battery change; ``set()`` clears it.
        source: the reference time (timezone-aware); a fake one makes tests deterministic,
            ``VirtualClock.now`` runs the device on simulated time.

    ``writes`` lists every value written with ``set()``, for tests.
    """

    def __init__(
        self,
        *,
        tz: ZoneInfo = UTC_ZONE,
        offset: timedelta = timedelta(0),
        drift_ppm: float = 0.0,
        unset: bool = False,
        source: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not isinstance(offset, timedelta):
            raise TypeError(f"offset must be a timedelta, got {type(offset).__name__}")
        if not math.isfinite(drift_ppm) or drift_ppm <= -1_000_000:
            raise ValueError(f"drift_ppm must be finite and > -1e6, got {drift_ppm}")
        self.tz = tz
        self.offset = offset
        self.drift_ppm = float(drift_ppm)
        self._source = source
        self._unset = unset
        self.writes: list[datetime] = []
        self._anchor_source = self._reference()
        start = UNSET_EPOCH if unset else self._anchor_source.astimezone(tz).replace(tzinfo=None)
        self._anchor_local = start + offset

    def now(self) -> datetime:
        """The time the device shows now (naive local wall clock, with microseconds)."""
        elapsed = self._reference() - self._anchor_source
        return self._anchor_local + elapsed * (1.0 + self.drift_ppm / 1_000_000)

    def set(self, local: datetime) -> None:
        """A Current Time write: the clock shows ``local`` now and runs (and drifts) from it."""
        if not isinstance(local, datetime):
            raise TypeError(f"a device clock is set with a datetime, got {type(local).__name__}")
        if local.tzinfo is not None:
            raise ValueError(f"a device clock shows naive local time, got {local.isoformat()}")
        self._anchor_source = self._reference()
        self._anchor_local = local
        self._unset = False
        self.writes.append(local)

    @property
    def is_unset(self) -> bool:
        """True from an ``unset=True`` start until the first ``set()``."""
        return self._unset

    def _reference(self) -> datetime:
        now = self._source()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"the clock source must return aware datetimes, got {now!r}")
        return now

    def __repr__(self) -> str:
        state = "unset" if self._unset else "set"
        return (
            f"DeviceClock({state}, tz={getattr(self.tz, 'key', self.tz)}, offset={self.offset}, "
            f"drift_ppm={self.drift_ppm}, now={self.now().isoformat()})"
        )
