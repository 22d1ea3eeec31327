"""The patient's local time for many readings at once: days, hours, with daylight saving.

Days, mornings and evenings are the patient's (a reading at 02:30 in Moscow is 23:30 UTC the day
before). UTC offsets change only at a zone's transitions, which fall on quarter hours, so the
offset is looked up once per zone and distinct quarter hour, not once per reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

_QUARTER = 900
DAY = 86_400
#: Up to this many quarter hours (about 14 years) the offsets are tabulated over the whole span.
_DENSE_LIMIT = 500_000


def utc_offsets(
    times: np.ndarray, patient: np.ndarray, zone_of_patient: np.ndarray, zones: Sequence[ZoneInfo]
) -> np.ndarray:
    """UTC offset in seconds of each reading (``times`` epoch seconds) in its patient's zone.

    ``zone_of_patient[p]`` indexes ``zones``. A zone whose offset does not change over the
    readings' span (no daylight saving, or none in the span) costs one gather, not a lookup.
    """
    if not len(times):
        return np.zeros(0)
    first, last = float(times.min()), float(times.max())
    constant = np.zeros(len(zones))
    changing = []
    for z, zone in enumerate(zones):
        days = np.arange(np.floor(first / DAY), np.floor(last / DAY) + 2) * DAY
        values = {_offset(int(d), zone) for d in days}
        if len(values) == 1:
            constant[z] = values.pop()
        else:
            changing.append(z)
    reading_zone = zone_of_patient[patient]
    offsets = constant[reading_zone]
    for z in changing:
        zone = zones[z]
        rows = np.flatnonzero(reading_zone == z)
        if not len(rows):
            continue
        quarters = np.floor(times[rows] / _QUARTER).astype(np.int64)
        low, high = int(quarters.min()), int(quarters.max())
        if high - low < _DENSE_LIMIT:  # a table over the whole span: no sort needed
            offsets[rows] = _offsets(range(low, high + 1), zone)[quarters - low]
        else:
            distinct, where = np.unique(quarters, return_inverse=True)
            offsets[rows] = _offsets(distinct.tolist(), zone)[where]
    return offsets


def _offsets(quarters: Sequence[int] | range, zone: ZoneInfo) -> np.ndarray:
    """Offsets at the given quarter hours. A zone changes its offset at most a few times a
    year, so it is computed per day, and per quarter hour only on a day with a transition."""
    q = np.asarray(quarters, dtype=np.int64)
    day = q // (DAY // _QUARTER)
    days, where = np.unique(day, return_inverse=True)
    start = np.array([_offset(int(d) * DAY, zone) for d in days])
    end = np.array([_offset(int(d + 1) * DAY, zone) for d in days])
    table = start[where]
    for d in days[start != end]:
        rows = np.flatnonzero(day == d)
        table[rows] = [_offset(int(x) * _QUARTER, zone) for x in q[rows]]
    return table


def offset_at(at: float, zone: ZoneInfo) -> float:
    return _offset(int(np.floor(at / _QUARTER)) * _QUARTER, zone)


def _offset(epoch: int, zone: ZoneInfo) -> float:
    delta = datetime.fromtimestamp(epoch, UTC).astimezone(zone).utcoffset()
    return 0.0 if delta is None else delta.total_seconds()


def local_day_and_hour(times: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local calendar day number (days since 1970-01-01 local) and local hour of each time."""
    local = times + offsets
    day = np.floor(local / DAY)
    hour = ((local - day * DAY) // 3600).astype(np.int8)
    return day.astype(np.int64), hour
