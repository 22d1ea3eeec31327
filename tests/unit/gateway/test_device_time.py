from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.device_time import ClockCheck, check_clock, when_measured
from homewatch.wire import ClockStatus, TimeSource

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)  # 12:00 in Berlin (summer time)
BOUND = timedelta(minutes=2)


def test_clock_within_the_bound_is_synchronised_with_its_offset():
    check = check_clock(datetime(2026, 6, 1, 12, 1), NOW, BERLIN, BOUND)
    assert check == ClockCheck(ClockStatus.SYNCHRONISED, timedelta(minutes=1))


def test_clock_beyond_the_bound_is_corrected_either_way():
    ahead = check_clock(datetime(2026, 6, 1, 13, 30), NOW, BERLIN, BOUND)
    behind = check_clock(datetime(2026, 6, 1, 11, 50), NOW, BERLIN, BOUND)
    assert ahead == ClockCheck(ClockStatus.CORRECTED, timedelta(minutes=90))
    assert behind == ClockCheck(ClockStatus.CORRECTED, -timedelta(minutes=10))


@pytest.mark.parametrize("device_now", [None, datetime(2000, 1, 1, 0, 5)])
def test_unknown_date_or_factory_default_is_unset(device_now):
    assert check_clock(device_now, NOW, BERLIN, BOUND).status is ClockStatus.UNSET


def test_corrected_time_subtracts_the_offset_and_applies_the_zone():
    clock = ClockCheck(ClockStatus.CORRECTED, timedelta(minutes=90))
    stamped = datetime(2026, 6, 1, 9, 30)  # device wall clock, 90 min fast, Berlin
    measured, source = when_measured(stamped, NOW, BERLIN, clock)
    assert measured == datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    assert source is TimeSource.DEVICE_CORRECTED


def test_synchronised_clock_is_taken_as_given():
    clock = ClockCheck(ClockStatus.SYNCHRONISED, timedelta(seconds=40))
    measured, source = when_measured(datetime(2026, 6, 1, 11, 0), NOW, BERLIN, clock)
    assert (measured, source) == (datetime(2026, 6, 1, 9, 0, tzinfo=UTC), TimeSource.DEVICE)


def test_unset_clock_uses_the_receive_time_and_says_so():
    clock = ClockCheck(ClockStatus.UNSET)
    assert when_measured(datetime(2000, 1, 1, 0, 3), NOW, BERLIN, clock) == (
        NOW,
        TimeSource.RECEIVED,
    )


def test_a_correction_that_lands_in_the_future_is_rejected():
    clock = ClockCheck(ClockStatus.CORRECTED, -timedelta(hours=5))  # device "5 h behind"
    measured, source = when_measured(datetime(2026, 6, 1, 11, 0), NOW, BERLIN, clock)
    assert (measured, source) == (NOW, TimeSource.RECEIVED)


def test_wire_form_rounds_the_offset():
    wire = ClockCheck(ClockStatus.CORRECTED, timedelta(seconds=12.34567)).to_wire()
    assert (wire.status, wire.offset_seconds) == (ClockStatus.CORRECTED, 12.346)
    assert ClockCheck.unknown().to_wire().offset_seconds is None
