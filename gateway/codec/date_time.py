"""Date Time 0x2A08 and Current Time 0x2A2B (SPEC.md 2.1, 2.2).

Date Time is the device's local wall-clock, no time zone; year, month or day 0 mean "not known".
Out-of-range values (month 13, hour 25) are kept as sent: ``to_datetime()`` is then None.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Self

from ._reader import Reader, pack_uint, require_length
from .open_enum import Code8

DATE_TIME_SIZE = 7
CURRENT_TIME_SIZE = 10


@dataclass(frozen=True)
class DateTime:
    """0x2A08: year (uint16), month, day, hours, minutes, seconds (uint8 each)."""

    year: int
    month: int
    day: int
    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    CHARACTERISTIC: ClassVar[str] = "2A08"

    def __post_init__(self) -> None:
        pack_uint(self.year, 2, "Date Time year")
        for name in ("month", "day", "hours", "minutes", "seconds"):
            pack_uint(getattr(self, name), 1, f"Date Time {name}")

    @property
    def unknown_fields(self) -> tuple[str, ...]:
        """Date parts the device marked "not known" (sent as 0)."""
        return tuple(name for name in ("year", "month", "day") if getattr(self, name) == 0)

    def to_datetime(self) -> datetime | None:
        """Naive local datetime; None when a date part is unknown or any field is invalid."""
        if self.unknown_fields:
            return None
        try:
            return datetime(self.year, self.month, self.day, self.hours, self.minutes, self.seconds)
        except ValueError:
            return None

    @classmethod
    def coerce(cls, value: Self | datetime | None) -> Self | None:
        """A time stamp given as a DateTime or a (naive, local) datetime; None stays None."""
        return cls.from_datetime(value) if isinstance(value, datetime) else value

    @classmethod
    def from_datetime(cls, dt: datetime) -> Self:
        """Wall-clock fields of ``dt``; a tzinfo is not converted, microseconds are dropped."""
        return cls(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second)

    @classmethod
    def read(cls, reader: Reader, field: str = "Time Stamp") -> Self:
        raw = reader.take(DATE_TIME_SIZE, field)
        return cls(int.from_bytes(raw[0:2], "little"), *raw[2:7])

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        require_length(cls.CHARACTERISTIC, "Date Time", data, DATE_TIME_SIZE)
        return cls.read(Reader(cls.CHARACTERISTIC, data), "Date Time")

    def __bytes__(self) -> bytes:
        return self.year.to_bytes(2, "little") + bytes(
            (self.month, self.day, self.hours, self.minutes, self.seconds)
        )


class DayOfWeek(Code8):
    """1 = Monday ... 7 = Sunday, 0 = unknown; 8..255 (RFU) are kept as pseudo-members."""

    UNKNOWN = 0
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7

    @classmethod
    def from_date(cls, dt: datetime) -> DayOfWeek:
        return cls(dt.isoweekday())

    @property
    def text(self) -> str:
        return self.name.title() if 0 < self.value <= 7 else self.name


class AdjustReason(enum.IntFlag):
    """Why the time was last adjusted; bits 4..7 are RFU and kept in the value."""

    NONE = 0
    MANUAL_TIME_UPDATE = 0x01
    EXTERNAL_REFERENCE_TIME_UPDATE = 0x02
    CHANGE_OF_TIME_ZONE = 0x04
    CHANGE_OF_DST = 0x08


@dataclass(frozen=True)
class CurrentTime:
    """0x2A2B: Date Time, Day of Week, Fractions256 (1/256 s), Adjust Reason."""

    date_time: DateTime
    day_of_week: DayOfWeek = DayOfWeek.UNKNOWN
    fractions256: int = 0
    adjust_reason: AdjustReason = AdjustReason.NONE

    CHARACTERISTIC: ClassVar[str] = "2A2B"

    def __post_init__(self) -> None:
        pack_uint(int(self.day_of_week), 1, "Current Time day of week")
        pack_uint(self.fractions256, 1, "Current Time fractions256")
        pack_uint(int(self.adjust_reason), 1, "Current Time adjust reason")

    @classmethod
    def from_datetime(
        cls, dt: datetime, *, adjust_reason: AdjustReason = AdjustReason.NONE
    ) -> Self:
        """Wall-clock of ``dt`` with its weekday; microseconds become fractions of 1/256 s."""
        return cls(
            DateTime.from_datetime(dt),
            DayOfWeek.from_date(dt),
            dt.microsecond * 256 // 1_000_000,
            adjust_reason,
        )

    def to_datetime(self) -> datetime | None:
        """Naive local datetime including the fractions; None when the date is unknown/invalid."""
        base = self.date_time.to_datetime()
        if base is None:
            return None
        return base.replace(microsecond=self.fractions256 * 1_000_000 // 256)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        require_length(cls.CHARACTERISTIC, "Current Time", data, CURRENT_TIME_SIZE)
        reader = Reader(cls.CHARACTERISTIC, data)
        date_time = DateTime.read(reader, "Date Time")
        day, fractions, reason = reader.take(3, "Day of Week, Fractions256, Adjust Reason")
        return cls(date_time, DayOfWeek(day), fractions, AdjustReason(reason))

    def __bytes__(self) -> bytes:
        return bytes(self.date_time) + bytes(
            (int(self.day_of_week), self.fractions256, int(self.adjust_reason))
        )
