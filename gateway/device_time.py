"""Device clocks: how far off a device's clock is, and when a measurement was really taken.

Pure code. A device stamps its measurements with its own wall clock (BLE Date Time carries no
time zone). When the gateway can read that clock on connect it compares it with its own and
keeps the offset; every time stamp from that session is then corrected by it. Without a
readable clock the time stamp is taken as given, in the configured device time zone, as long as
it is plausible. A clock that was never set tells nothing: the receive time stands in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from homewatch.wire import ClockStatus, DeviceClock, TimeSource

log = logging.getLogger(__name__)

#: Device clocks that were never set often start in 2000 or earlier.
EARLIEST_PLAUSIBLE = datetime(2010, 1, 1)
#: A time stamp further ahead of the gateway's clock than this is a wrong clock, not a reading.
MAX_DEVICE_CLOCK_AHEAD = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ClockCheck:
    """What the gateway learnt of one device's clock on connect."""

    status: ClockStatus
    #: Device clock minus gateway clock (positive: the device runs ahead); None when unknown.
    offset: timedelta | None = None

    @classmethod
    def unknown(cls) -> ClockCheck:
        return cls(ClockStatus.UNKNOWN)

    def to_wire(self) -> DeviceClock:
        seconds = None if self.offset is None else round(self.offset.total_seconds(), 3)
        return DeviceClock(status=self.status, offset_seconds=seconds)


def check_clock(
    device_now: datetime | None, gateway_now: datetime, tz: ZoneInfo, bound: timedelta
) -> ClockCheck:
    """Compare a device clock read at ``gateway_now`` (aware) with the gateway's.

    ``device_now`` is the device's naive wall clock, None when it reports an unknown date.
    """
    if device_now is None or device_now < EARLIEST_PLAUSIBLE:
        return ClockCheck(ClockStatus.UNSET)
    offset = device_now.replace(tzinfo=tz) - gateway_now
    status = ClockStatus.SYNCHRONISED if abs(offset) <= bound else ClockStatus.CORRECTED
    return ClockCheck(status, offset)


def when_measured(
    device_time: datetime | None,
    received_at: datetime,
    tz: ZoneInfo,
    clock: ClockCheck,
    device_key: str = "?",
) -> tuple[datetime, TimeSource]:
    """Best estimate of when a measurement was taken (UTC, aware) and where it came from.

    A corrected time stamp assumes the offset measured on connect held when the device stamped
    the record: right for a clock that is simply set wrong, and the best available estimate for
    one that drifts. A stored record may be days old, but never in the future.
    """
    if device_time is None or clock.status is ClockStatus.UNSET:
        return received_at, TimeSource.RECEIVED
    local = device_time.replace(tzinfo=tz)
    source = TimeSource.DEVICE
    if clock.status is ClockStatus.CORRECTED and clock.offset is not None:
        local -= clock.offset
        source = TimeSource.DEVICE_CORRECTED
    if device_time < EARLIEST_PLAUSIBLE or local - received_at > MAX_DEVICE_CLOCK_AHEAD:
        log.warning(
            "%s: implausible device time %s (received %s); using the receive time",
            device_key, device_time, received_at,
        )  # fmt: skip
        return received_at, TimeSource.RECEIVED
    return local.astimezone(received_at.tzinfo), source
