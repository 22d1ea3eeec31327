"""Trend statistics: the row-wise (cohort) versions agree with the one-series references."""

import itertools
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from scipy import special
from scipy import stats as scipy_stats

from alerting.filters import hampel, hampel_grouped
from alerting.localtime import local_day_and_hour, utc_offsets
from alerting.stats import (
    cusum_rows,
    cusum_upper,
    mann_kendall,
    mann_kendall_rows,
    nanmedian_rows,
    robust_sd_rows,
    theil_sen,
    theil_sen_rows,
)


def test_mann_kendall_by_hand():
    mk = mann_kendall([1, 3, 2, 4])  # pairs: + + + - + + -> S = 4
    assert mk.s == 4 and mk.var_s == 4 * 3 * 13 / 18
    z = (4 - 1) / math.sqrt(26 / 3)  # with the continuity correction
    assert mk.p_increasing == pytest.approx(0.5 * (1 - math.erf(z / math.sqrt(2))))
    assert mann_kendall([5, 4, 3, 2]).p_increasing > 0.9
    assert mann_kendall([1, np.nan, 2]).n == 2


def test_mann_kendall_agrees_with_kendalls_tau_against_time():
    y = np.array([3.1, 2.0, 4.2, 5.5, 4.9, 6.3, 7.0, 6.1, 8.4, 9.0, 8.8, 10.5])
    tau = scipy_stats.kendalltau(np.arange(len(y)), y, method="asymptotic", alternative="greater")
    mk = mann_kendall(y)
    # The same statistic and variance; only MK's continuity correction differs.
    assert mk.s / (len(y) * (len(y) - 1) / 2) == pytest.approx(tau.statistic)
    assert tau.pvalue == pytest.approx(special.ndtr(-mk.s / np.sqrt(mk.var_s)))
    assert mk.p_increasing == pytest.approx(special.ndtr(-(mk.s - 1) / np.sqrt(mk.var_s)))


def test_theil_sen_ignores_an_outlier_and_missing_days():
    y = np.arange(10, dtype=float) * 2 + 100
    y[4] = 300
    y[7] = np.nan
    assert theil_sen(y) == pytest.approx(2.0)


def test_cusum_path_by_hand():
    z = [0.2, 1.5, 2.0, np.nan, -3.0, 1.0]
    assert cusum_upper(z, 0.5).tolist() == [0.0, 1.0, 2.5, 2.5, 0.0, 0.5]


def test_row_versions_match_the_references():
    rng = np.random.default_rng(3)
    y = rng.normal(0, 1, (60, 21)) + np.linspace(0, 3, 21) * (np.arange(60) % 2)[:, None]
    y[rng.random(y.shape) < 0.2] = np.nan
    s, n, p = mann_kendall_rows(y)
    refs = [mann_kendall(row) for row in y]
    assert s.tolist() == [r.s for r in refs] and n.tolist() == [r.n for r in refs]
    assert np.allclose(p, [r.p_increasing for r in refs])  # no ties in continuous data
    assert np.allclose(theil_sen_rows(y), [theil_sen(row) for row in y])
    sigma = rng.uniform(0.5, 2, 60)
    state = cusum_rows(y, sigma, 0.5)
    paths = [cusum_upper(row / sg, 0.5) for row, sg in zip(y, sigma, strict=True)]
    assert np.allclose(state.s, [path[-1] for path in paths])


def test_cusum_rows_report_the_run_since_the_sum_left_zero():
    values = np.array([[0.0, 10.0, np.nan, 12.0, 14.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    state = cusum_rows(values, np.array([2.0, 2.0]), 0.5)
    assert state.run_days.tolist() == [3, 0]
    assert state.run_mean[0] == pytest.approx(12.0) and np.isnan(state.run_mean[1])
    assert state.first_day.tolist() == [1, -1]


def test_nanmedian_and_robust_sd_rows():
    x = np.array([[1.0, 5.0, np.nan, 3.0], [np.nan] * 4, [2.0, 2.0, 2.0, 10.0]])
    med = nanmedian_rows(x)
    assert med[0] == 3.0 and np.isnan(med[1]) and med[2] == 2.0
    assert robust_sd_rows(x)[2] == 0.0


def test_grouped_hampel_equals_the_filter_run_per_series():
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(0, 40))
        values = np.round(rng.normal(130, 8, n)) + np.where(rng.random(n) < 0.1, 60, 0)
        values[rng.random(n) < 0.1] = np.nan
        groups = np.sort(rng.integers(0, 4, n))
        together = hampel_grouped(values, groups, half_window=3, min_scale=2.0)
        for g in np.unique(groups):
            alone = hampel(values[groups == g], half_window=3, min_scale=2.0)
            assert together.spikes[groups == g].tolist() == alone.spikes.tolist()
            assert np.allclose(together.medians[groups == g], alone.medians, equal_nan=True)


def test_utc_offsets_follow_daylight_saving_per_patient():
    berlin, moscow = ZoneInfo("Europe/Berlin"), ZoneInfo("Europe/Moscow")
    start = datetime(2026, 3, 28, 12, tzinfo=UTC)  # Berlin moves to summer time on 29 March
    times = np.array([(start + timedelta(hours=h)).timestamp() for h in range(0, 48, 3)] * 2)
    patient = np.repeat([0, 1], len(times) // 2)
    offsets = utc_offsets(times, patient, np.array([0, 1]), [berlin, moscow])
    expected = [
        datetime.fromtimestamp(t, UTC).astimezone([berlin, moscow][p]).utcoffset().total_seconds()
        for t, p in zip(times, patient, strict=True)
    ]
    assert offsets.tolist() == expected
    assert {3600.0, 7200.0} <= set(offsets[:16].tolist())
    day, hour = local_day_and_hour(times, offsets)
    local = [
        datetime.fromtimestamp(t, UTC).astimezone([berlin, moscow][p])
        for t, p in zip(times, patient, strict=True)
    ]
    assert hour.tolist() == [d.hour for d in local]
    assert (day - day.min()).tolist() == [(d.date() - local[0].date()).days for d in local]


@pytest.mark.parametrize("half_window", [1, 2, 3, 4])
def test_the_sorting_network_path_equals_the_sort_path(half_window):
    rng = np.random.default_rng(half_window)
    n = 5_000
    values = np.round(rng.normal(130, 9, n), 1) + np.where(rng.random(n) < 0.02, 50, 0)
    values[rng.random(n) < 0.05] = np.nan
    groups = np.sort(rng.integers(0, 200, n))
    # A floor off the 0.1 grid: no deviation ties with the threshold, where float rounding
    # (not the method) would decide.
    exact = hampel_grouped(values, groups, half_window=half_window, min_scale=2.07)
    fast = hampel_grouped(values, groups, half_window=half_window, min_scale=2.07, resolution=0.1)
    assert exact.spikes.sum() > 10
    assert fast.spikes.tolist() == exact.spikes.tolist()
    assert np.allclose(fast.medians, exact.medians, equal_nan=True, atol=1e-3)
    # Values that do not fit 16 bits at that resolution take the exact path.
    huge = hampel_grouped(values * 1000, groups, half_window=half_window, resolution=0.1)
    assert (
        huge.spikes.tolist()
        == hampel_grouped(values * 1000, groups, half_window=half_window).spikes.tolist()
    )


def test_the_sorting_networks_sort_every_input():
    """0-1 principle: a comparator network that sorts every 0/1 sequence sorts everything."""
    from alerting.filters import _NETWORKS

    for half_window, network in _NETWORKS.items():
        for bits in itertools.product((0, 1), repeat=2 * half_window + 1):
            values = list(bits)
            for i, j in network:
                if values[i] > values[j]:
                    values[i], values[j] = values[j], values[i]
            assert values == sorted(bits), (half_window, bits)
