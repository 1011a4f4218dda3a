"""rlbandit.stats: every helper against an independent computation (scipy.stats, numpy's
percentiles and polyfit, a brute-force bootstrap loop)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from rlbandit import stats

samples = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=40)
positive = st.lists(st.floats(1e-6, 1e6), min_size=2, max_size=40)


@given(samples)
def test_mean_se_matches_scipy_sem(values):
    mean, se = stats.mean_se(values)
    assert mean == pytest.approx(np.mean(values), rel=1e-12, abs=1e-9)
    assert se == pytest.approx(scipy.stats.sem(values), rel=1e-9, abs=1e-9)


def test_mean_se_drops_nan_and_edge_cases():
    values = pd.Series([1.0, np.nan, 3.0, 8.0])
    mean, se = stats.mean_se(values)
    assert mean == pytest.approx(4.0)
    assert se == pytest.approx(scipy.stats.sem(values, nan_policy="omit"))
    single = stats.mean_se([2.5, np.nan])
    assert single[0] == 2.5 and np.isnan(single[1])
    assert all(np.isnan(v) for v in stats.mean_se([]))
    assert all(np.isnan(v) for v in stats.mean_se([np.nan]))


def test_format_mean_se():
    values = [0.1234, 0.2345, 0.3456]
    se = scipy.stats.sem(values)
    assert stats.format_mean_se(values) == f"{np.mean(values):.3g} ± {se:.2g}"
    assert stats.format_mean_se(values, ".3f", ".3f") == f"{np.mean(values):.3f} ± {se:.3f}"
    assert stats.format_mean_se([np.nan, np.nan]) == "—"
    assert stats.format_mean_se([], empty="n/a") == "n/a"
    assert stats.format_mean_se([1.0], ".3g", ".1g") == "1 ± nan"


@given(positive)
def test_geometric_mean_matches_scipy(values):
    assert stats.geometric_mean(values) == pytest.approx(scipy.stats.gmean(values), rel=1e-10)


def test_geometric_mean_edges():
    assert stats.geometric_mean([2.0, np.nan, 8.0]) == pytest.approx(4.0)
    assert np.isnan(stats.geometric_mean([np.nan]))
    assert stats.geometric_mean([0.0, 3.0]) == 0.0


@given(positive, st.sampled_from([0.5, 0.9, 0.95, 0.99]))
def test_log_mean_band_is_the_t_interval_of_the_logs(values, level):
    centre, low, high = stats.log_mean_band(values, level)
    logs = np.log(values)
    spread = scipy.stats.sem(logs)
    lo, hi = scipy.stats.t.interval(level, len(logs) - 1, loc=logs.mean(), scale=spread) if spread > 0 else (
        logs.mean(), logs.mean())  # all values equal: a band of width 0
    assert centre == pytest.approx(scipy.stats.gmean(values), rel=1e-10)
    assert low == pytest.approx(np.exp(lo), rel=1e-8)
    assert high == pytest.approx(np.exp(hi), rel=1e-8)
    assert 0 < low <= centre <= high


def test_log_mean_band_stays_positive_and_rejects_non_positive():
    values = [1e-12, 1.0, 1e12]  # a normal-scale band (mean ± t·se) would go far below zero
    centre, low, high = stats.log_mean_band(values)
    assert low > 0 and np.isclose(np.log(centre) - np.log(low), np.log(high) - np.log(centre))
    assert np.isnan(stats.log_mean_band([3.0])[1])
    with pytest.raises(ValueError, match="values"):
        stats.log_mean_band([1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="values"):
        stats.log_mean_band([1.0, -2.0])
    with pytest.raises(ValueError, match="level"):
        stats.log_mean_band([1.0, 2.0], level=1.5)


@given(st.lists(st.floats(0.5, 2.0), min_size=3, max_size=12), st.floats(-2.0, 2.0))
def test_loglog_slope_matches_polyfit(noise, exponent):
    x = np.geomspace(10, 1e4, len(noise))
    y = 3.0 * x ** exponent * np.asarray(noise)
    assert float(stats.loglog_slope(x, y)) == pytest.approx(np.polyfit(np.log(x), np.log(y), 1)[0], abs=1e-9)


def test_loglog_slope_is_batched_and_recovers_a_power_law():
    x = np.array([10.0, 100.0, 1000.0])
    curves = np.stack([x ** -0.5, 2 * x ** -1.0])
    np.testing.assert_allclose(stats.loglog_slope(x, curves), [-0.5, -1.0])


def test_bootstrap_means_against_a_brute_force_loop():
    values = np.random.default_rng(0).normal(size=(7, 3))
    boot = stats.bootstrap_means(values, np.random.default_rng(5), n_boot=50)
    # the same resamples drawn again, each built row by row and averaged with np.mean
    counts = np.random.default_rng(5).multinomial(7, np.full(7, 1 / 7), size=50)
    brute = np.array([np.mean(np.repeat(values, c, axis=0), axis=0) for c in counts])
    np.testing.assert_allclose(boot, brute, rtol=1e-12, atol=1e-12)
    assert boot.shape == (50, 3)


def test_percentile_interval_matches_numpy():
    draws = np.random.default_rng(3).normal(size=1001)
    assert stats.percentile_interval(draws) == tuple(np.percentile(draws, [2.5, 97.5]))
    low, high = stats.percentile_interval(draws, 0.8)
    assert (low, high) == pytest.approx(tuple(np.percentile(draws, [10, 90])), rel=1e-12)


def test_bootstrap_ci_of_a_slope_against_a_brute_force_loop():
    n = np.array([10.0, 30.0, 100.0, 300.0])
    rng = np.random.default_rng(1)
    curves = n ** -1.0 * np.exp(0.3 * rng.standard_normal((9, 4)))
    low, high = stats.bootstrap_ci(curves, np.random.default_rng(11), n_boot=200,
                                   statistic=lambda means: stats.loglog_slope(n, means))
    counts = np.random.default_rng(11).multinomial(9, np.full(9, 1 / 9), size=200)
    slopes = [np.polyfit(np.log(n), np.log(np.repeat(curves, c, axis=0).mean(0)), 1)[0] for c in counts]
    assert (low, high) == pytest.approx(tuple(np.percentile(slopes, [2.5, 97.5])), abs=1e-10)
    assert low < -1.0 < high


def test_bootstrap_ci_of_the_mean_is_close_to_the_normal_interval():
    values = np.random.default_rng(2).normal(5.0, 2.0, size=400)
    low, high = stats.bootstrap_ci(values, np.random.default_rng(0), n_boot=4000)
    half = 1.96 * scipy.stats.sem(values)
    assert low == pytest.approx(values.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(values.mean() + half, abs=0.1 * half)


def test_bootstrap_needs_a_generator_and_is_reproducible():
    values = np.arange(10.0)
    first = stats.bootstrap_ci(values, np.random.default_rng(4))
    assert first == stats.bootstrap_ci(values, np.random.default_rng(4))
    with pytest.raises(ValueError, match="rng"):
        stats.bootstrap_ci(values, 4)
    with pytest.raises(ValueError, match="n_boot"):
        stats.bootstrap_means(values, np.random.default_rng(0), n_boot=0)
    with pytest.raises(ValueError, match="statistic"):
        stats.bootstrap_ci(np.ones((5, 2)), np.random.default_rng(0))


def test_t_interval_against_scipy():
    from scipy import stats

    from rlbandit.stats import t_interval

    values = np.random.default_rng(3).normal(2.0, 1.5, 17)
    mean, low, high = t_interval(values, 0.9)
    want = stats.t.interval(0.9, 16, loc=values.mean(), scale=stats.sem(values))
    assert mean == pytest.approx(values.mean(), rel=1e-12)
    assert (low, high) == pytest.approx(want, rel=1e-12)
    assert np.isnan(t_interval([1.0])[1]) and np.isnan(t_interval([])[0])
