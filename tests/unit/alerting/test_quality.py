"""Quality marks: every reading marked with its reasons, none dropped."""

import numpy as np
import pytest

from alerting import assess_blood_pressure, assess_glucose
from alerting.columns import BP_FLAGS, GLUCOSE_STATUS, BloodPressureColumns, GlucoseColumns
from alerting.observations import CLOCK_STATUSES, TIME_SOURCES
from alerting.quality import (
    EXCLUDED,
    NOT_FOR_STATISTICS,
    Mark,
    blood_pressure_quality,
    glucose_for_thresholds,
    glucose_quality,
)
from gateway.codec.glucose import SensorStatusFlag
from homewatch import wire
from tests.unit.alerting.builders import bp, bp_series, glucose


def notes_by_id(notes):
    return {n.reading_id: n for n in notes}


def test_names_match_the_wire_contract_and_the_gls_codec():
    assert list(BP_FLAGS) == [f.value for f in wire.MeasurementFlag]
    assert list(TIME_SOURCES) == [t.value for t in wire.TimeSource]
    assert list(CLOCK_STATUSES) == [c.value for c in wire.ClockStatus]
    assert list(GLUCOSE_STATUS) == [
        str(f.name).lower() for f in SensorStatusFlag if f.value and f.value.bit_count() == 1
    ]


@pytest.mark.parametrize(
    ("sys", "dia", "marks", "detail"),
    [
        (None, 80, {"failed"}, "failed measurement"),
        (320, 100, {"implausible"}, "systolic 320 mmHg outside 50-300"),
        (16.0, 10.7, {"implausible", "unit_suspect"}, "looks like kPa (120/80 mmHg)"),
        (140, 145, {"implausible"}, "diastolic 145 not below systolic 140"),
    ],
    ids=["failed", "above-300", "kpa-mix-up", "dia-not-below-sys"],
)
def test_unusable_blood_pressure_is_marked_and_explained(sys, dia, marks, detail):
    readings = [*bp_series(3, prefix="ok"), bp("bad", 3, 8, sys, dia)]
    note = notes_by_id(assess_blood_pressure(readings))["bad"]
    assert set(note.marks) >= marks and note.excluded
    assert detail in note.detail


def test_device_flags_mark_quality_and_only_measurement_errors_leave_statistics():
    readings = [
        bp("moved", 0, 7, 150, 95, flags=("body_movement",)),
        bp("loose", 0, 8, 150, 95, flags=("cuff_too_loose",)),
        bp("irregular", 0, 9, 150, 95, flags=("irregular_pulse",)),
        bp("future", 0, 10, 150, 95, flags=("some_new_flag",)),
    ]
    notes = notes_by_id(assess_blood_pressure(readings))
    assert notes["moved"].marks == ("body_movement",) and notes["moved"].not_for_statistics
    assert notes["loose"].not_for_statistics and not notes["loose"].excluded
    # Irregular pulse is a finding, not a fault: the pressure values are still used.
    assert notes["irregular"].marks == ("irregular_pulse",)
    assert not notes["irregular"].not_for_statistics
    assert notes["future"].marks == ("unknown_flag",) and not notes["future"].excluded


def test_the_same_measurement_delivered_twice_is_a_duplicate_but_a_real_re_measurement_is_not():
    readings = [
        bp("a", 0, 7, 140, 90, device_key="cuff"),
        bp("a-again", 0, 7 + 30 / 3600, 140, 90, device_key="cuff"),  # 30 s later, same values
        bp("b", 0, 7 + 2 / 60, 140, 90, device_key="cuff"),  # ESH duplicate 2 min later
    ]
    notes = notes_by_id(assess_blood_pressure(readings))
    assert notes["a-again"].marks == ("duplicate",) and notes["a-again"].excluded
    assert "same values as reading a" in notes["a-again"].detail
    assert "a" not in notes and "b" not in notes


def test_a_chain_of_redeliveries_points_at_the_first():
    p = np.zeros(4, np.intp)
    t = np.array([0.0, 10.0, 20.0, 500.0])
    cols = BloodPressureColumns.from_arrays(p, t, [140] * 4, [90] * 4, [70] * 4)
    assert blood_pressure_quality(cols).duplicate_of.tolist() == [-1, 0, 0, -1]


def test_a_spike_is_left_out_of_statistics_but_kept_for_thresholds():
    readings = bp_series(4, seed=1)
    readings[9] = bp("spike", 2, 7, 205, 95)  # among ~134/83 readings
    note = notes_by_id(assess_blood_pressure(readings))["spike"]
    assert note.marks == ("spike",) and note.not_for_statistics and not note.excluded
    assert "205/95 mmHg against a local median of" in note.detail
    assert [n.reading_id for n in assess_blood_pressure(bp_series(4, seed=1))] == []


def test_spikes_are_judged_per_patient_never_across_patients():
    # Patient 0 at 120, patient 1 at 180: the border must not make either look like a spike.
    p = np.repeat([0, 1], 8)
    sys_ = np.r_[np.full(8, 120.0), np.full(8, 180.0)]
    cols = BloodPressureColumns.from_arrays(p, np.arange(16) * 3600.0, sys_, sys_ - 40)
    assert not (blood_pressure_quality(cols).marks & Mark.SPIKE).any()


def test_time_stamps_that_are_estimates_or_corrections_are_marked():
    readings = [
        bp("rx", 0, 7, 130, 80, time_source="received"),
        bp("fixed", 0, 19, 130, 80, time_source="device_corrected"),
    ]
    notes = notes_by_id(assess_blood_pressure(readings))
    assert notes["rx"].marks == ("time_estimated",) and not notes["rx"].excluded
    assert notes["fixed"].marks == ("time_corrected",)


def test_glucose_marks():
    readings = [
        glucose("ctl", 0, 7, 2.6, control_solution=True),
        glucose("strip", 0, 8, 5.5, sensor_status=frozenset({"strip_insertion_error"})),
        glucose(
            "lo", 0, 9, None, sensor_status=frozenset({"result_lower_than_device_can_process"})
        ),
        glucose(
            "hi", 0, 10, None, sensor_status=frozenset({"result_higher_than_device_can_process"})
        ),
        glucose("nan", 0, 11, None),
        glucose("mgdl", 0, 12, 126.0),
        glucose("battery", 0, 13, 6.0, sensor_status=frozenset({"device_battery_low"})),
        glucose("fine", 0, 14, 6.0),
    ]
    notes = notes_by_id(assess_glucose(readings))
    assert notes["ctl"].marks == ("control_solution",) and notes["ctl"].excluded
    assert notes["strip"].marks == ("sensor_fault",) and notes["strip"].excluded
    assert notes["lo"].marks == ("below_meter_range",) and not notes["lo"].excluded
    assert "counted as level 2 hypoglycaemia" in notes["lo"].detail
    assert notes["hi"].marks == ("above_meter_range",)
    assert notes["nan"].marks == ("failed",)
    assert set(notes["mgdl"].marks) == {"implausible", "unit_suspect"}
    assert "looks like mg/dL (126 mg/dL = 7.0 mmol/L)" in notes["mgdl"].detail
    assert notes["battery"].marks == ("battery_low",) and not notes["battery"].excluded
    assert "fine" not in notes


def test_glucose_has_no_spike_filter_because_a_hypo_looks_like_one():
    values = [7.0, 7.2, 6.8, 2.4, 7.1, 6.9, 7.0]
    cols = GlucoseColumns.from_arrays(np.zeros(7, np.intp), np.arange(7) * 3600.0, values)
    q = glucose_quality(cols)
    assert not q.marks.any()
    assert glucose_for_thresholds(cols, q.marks)[3] == 2.4


def test_values_the_hypo_rules_count():
    status = [0, 1 << GLUCOSE_STATUS.index("result_lower_than_device_can_process"), 0, 0]
    cols = GlucoseColumns.from_arrays(
        np.zeros(4, np.intp),
        np.arange(4) * 3600.0,
        [5.0, np.nan, 2.0, 3.0],
        status,
        control_solution=[False, False, True, False],
    )
    counted = glucose_for_thresholds(cols, glucose_quality(cols).marks)
    assert counted[0] == 5.0 and counted[1] == 0.0 and np.isnan(counted[2]) and counted[3] == 3.0


def test_mark_groups():
    assert Mark.SPIKE & NOT_FOR_STATISTICS and not Mark.SPIKE & EXCLUDED
    assert Mark.CONTROL_SOLUTION & EXCLUDED
    assert not Mark.IRREGULAR_PULSE & NOT_FOR_STATISTICS
