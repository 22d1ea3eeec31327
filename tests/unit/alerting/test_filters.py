import numpy as np
import pytest

from alerting.filters import hampel


def test_a_spike_among_steady_readings_is_flagged_and_its_neighbours_are_not():
    values = [132, 135, 131, 134, 190, 133, 136, 132, 134]
    result = hampel(values, half_window=3, min_scale=2.0)
    assert result.spikes.tolist() == [False] * 4 + [True] + [False] * 4
    assert result.medians[4] == 134  # median of 135 131 134 190 133 136 132


def test_a_sustained_rise_is_not_a_spike():
    values = [130, 131, 129, 150, 152, 151, 149, 150]
    assert not hampel(values, half_window=3, min_scale=2.0).spikes.any()


def test_identical_neighbours_need_the_scale_floor():
    values = [120, 120, 120, 121, 120, 120, 120]
    assert hampel(values, min_scale=0.0).spikes[3]  # MAD 0: any difference is a spike
    assert not hampel(values, min_scale=2.0).spikes.any()


def test_nan_values_are_skipped_not_flagged():
    values = [130, np.nan, 131, 129, 200, 130, np.nan, 132]
    result = hampel(values, half_window=2, min_scale=2.0)
    assert result.spikes.tolist() == [False, False, False, False, True, False, False, False]
    assert np.isnan(result.medians[1])


def test_too_few_values_flag_nothing():
    assert not hampel([120, 200]).spikes.any()
    with pytest.raises(ValueError):
        hampel([1, 2, 3], half_window=0)
