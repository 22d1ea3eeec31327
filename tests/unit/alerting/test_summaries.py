from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from alerting.observations import BloodPressureObservation
from alerting.summaries.blood_pressure import home_bp_protocol_mean
from alerting.summaries.glucose import MG_DL_PER_MMOL_L, summarise_glucose

MOSCOW = ZoneInfo("Europe/Moscow")  # UTC+3, no DST
DAY0 = datetime(2026, 11, 1, tzinfo=MOSCOW)


def bp(rid: str, day: int, hour: int, sys: float | None, dia: float | None, pulse=70.0):
    at = (DAY0 + timedelta(days=day, hours=hour)).astimezone(UTC)
    return BloodPressureObservation(rid, at, sys, dia, pulse)


def protocol_week(first_day=(160, 100), rest=(140, 90)):
    """Morning (07:00, 07:02) and evening (20:00, 20:02) duplicates for 7 local days."""
    readings = []
    for day in range(7):
        s, d = first_day if day == 0 else rest
        for hour, minute_offset in ((7, 0), (7, 2 / 60), (20, 0), (20, 2 / 60)):
            evening_extra = 4 if hour == 20 else 0
            readings.append(
                bp(f"{day}-{hour}-{minute_offset}", day, hour + minute_offset, s + evening_extra, d)
            )
    return readings


def test_protocol_mean_discards_the_first_day_and_splits_morning_evening():
    mean = home_bp_protocol_mean(protocol_week(), end=DAY0 + timedelta(days=7), tz=MOSCOW)
    assert mean.discarded_day == DAY0.date()
    assert (mean.readings, mean.days) == (24, 6)
    assert (mean.morning_systolic, mean.evening_systolic) == (140, 144)
    assert mean.systolic == 142 and mean.diastolic == 90
    assert mean.pulse == 70
    assert mean.sufficient and mean.above_threshold
    assert not any(r.startswith("0-") for r in mean.reading_ids)


def test_days_and_parts_of_day_are_the_patients_local_time():
    # 02:30 local on day 1 is still 23:30 UTC of day 0: it must count for local day 1.
    readings = [bp("a", 0, 8, 150, 95), bp("b", 1, 2.5, 130, 80)]
    mean = home_bp_protocol_mean(readings, end=DAY0 + timedelta(days=7), tz=MOSCOW)
    assert mean.discarded_day == DAY0.date()
    assert mean.reading_ids == ("b",)
    assert mean.morning_systolic is None and mean.evening_systolic is None  # 02:30 is neither


def test_few_readings_are_reported_as_insufficient():
    readings = [bp("a", 0, 7, 150, 95), bp("b", 1, 7, 138, 84), bp("c", 2, 7, 136, 86)]
    mean = home_bp_protocol_mean(readings, end=DAY0 + timedelta(days=7), tz=MOSCOW)
    assert (mean.readings, mean.days, mean.sufficient) == (2, 2, False)
    assert mean.systolic == 137 and mean.diastolic == 85 and mean.above_threshold


def test_below_threshold_and_single_day_is_not_discarded():
    readings = [bp("a", 3, 7, 128, 80), bp("b", 3, 7.05, 126, 78)]
    mean = home_bp_protocol_mean(readings, end=DAY0 + timedelta(days=7), tz=MOSCOW)
    assert mean.discarded_day is None and mean.readings == 2
    assert not mean.above_threshold


def test_failed_and_implausible_readings_are_left_out_and_window_is_respected():
    readings = [
        bp("old", -3, 7, 200, 120),  # before the 7-day window
        bp("d0", 0, 7, 150, 95),
        bp("nan", 1, 7, None, 80),
        bp("absurd", 1, 8, 400, 80),
        bp("ok", 1, 20, 130, 80),
    ]
    mean = home_bp_protocol_mean(readings, end=DAY0 + timedelta(days=7), tz=MOSCOW)
    assert mean.reading_ids == ("ok",)


def test_no_readings_no_mean():
    assert home_bp_protocol_mean([], end=DAY0, tz=MOSCOW) is None


T = datetime(2026, 11, 1, 8, tzinfo=UTC)


def times(n: int, step_minutes: float = 240) -> list[datetime]:
    return [T + timedelta(minutes=step_minutes * i) for i in range(n)]


def test_glucose_summary_by_hand():
    values = [2.8, 3.5, 5.0, 7.0, 9.0, 11.0, 15.0, 6.7]
    s = summarise_glucose(times(len(values)), values)
    assert s.readings == 8
    assert s.mean_mmol_l == pytest.approx(60.0 / 8)
    assert s.mean_mg_dl == pytest.approx(7.5 * MG_DL_PER_MMOL_L)
    # Squared deviations from 7.5 sum to 115.98; sample SD = sqrt(115.98 / 7).
    assert s.sd_mmol_l == pytest.approx(4.0705, abs=1e-4)
    assert s.cv_percent == pytest.approx(100 * 4.0705 / 7.5, abs=1e-2)
    assert s.below_level_2_percent == 12.5 and s.below_level_1_percent == 12.5
    assert s.in_range_percent == 50.0
    assert s.above_level_1_percent == 12.5 and s.above_level_2_percent == 12.5
    assert s.gmi_percent == pytest.approx(3.31 + 0.02392 * 7.5 * 18.016)
    # 2.8 then 3.5 four hours later: separate readings below 3.9 more than 15 min apart.
    assert (s.hypo_events, s.hypo_level_2_events) == (2, 1)


def test_range_boundaries_follow_the_consensus():
    s = summarise_glucose(times(4), [3.0, 3.9, 10.0, 13.9])
    assert s.below_level_2_percent == 0  # 3.0 is level 1
    assert s.below_level_1_percent == 25
    assert s.in_range_percent == 50  # 3.9 and 10.0 are in range
    assert s.above_level_1_percent == 25  # 13.9 is level 1
    assert s.above_level_2_percent == 0


def test_a_hypo_re_measured_within_minutes_is_one_event():
    at = [T, T + timedelta(minutes=5), T + timedelta(minutes=12), T + timedelta(hours=5)]
    s = summarise_glucose(at, [3.4, 2.7, 3.1, 3.6])
    assert (s.hypo_events, s.hypo_level_2_events) == (2, 1)


def test_failed_measurements_are_left_out():
    s = summarise_glucose(times(3), [float("nan"), 6.0, 8.0])
    assert s.readings == 2 and s.mean_mmol_l == 7.0
    assert summarise_glucose(times(1), [float("nan")]) is None


def test_mismatched_inputs_are_an_error():
    with pytest.raises(ValueError, match="2 times for 3 values"):
        summarise_glucose(times(2), [5.0, 6.0, 7.0])


def test_fasting_and_post_meal_means_when_the_meter_gives_the_context():
    s = summarise_glucose(
        times(5),
        [5.5, 9.5, 6.5, np.nan, 8.0],
        ["fasting", "postprandial", "fasting", "fasting", None],
    )
    assert {m: (v.readings, v.mean_mmol_l) for m, v in s.by_meal.items()} == {
        "fasting": (2, 6.0),
        "postprandial": (1, 9.5),
    }
    assert summarise_glucose(times(2), [5.0, 6.0]).by_meal == {}
    with pytest.raises(ValueError, match="1 meals for 2 values"):
        summarise_glucose(times(2), [5.0, 6.0], ["fasting"])
