"""The bootstrap interval against numpy on known data: the plain bootstrap, the cluster bootstrap over
groups of correlated samples, the small-sample widening that keeps 95% with a handful of groups, and draws
shared by several sets of values measured on the same samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from vitok.bootstrap import bootstrap_ci, bootstrap_means, small_sample_widening


def test_interval_matches_a_direct_numpy_bootstrap():
    values = np.random.default_rng(1).normal(25.0, 2.0, size=64)
    low, high = bootstrap_ci(values, resamples=4000, seed=7)
    counts = np.random.default_rng(7).multinomial(64, np.full(64, 1 / 64), size=4000)
    means = counts @ values / 64
    # unbiased variance (x sqrt(G / (G - 1))), then Student's t over the normal quantile for 63 dof
    widening = np.sqrt(64 / 63) * stats.t.ppf(0.975, 63) / stats.norm.ppf(0.975)
    means = values.mean() + (means - values.mean()) * widening
    assert np.allclose((low, high), np.quantile(means, [0.025, 0.975]), rtol=0, atol=1e-12)
    # and it covers the sample mean, about as wide as the t interval of the mean
    t_half = stats.t.ppf(0.975, 63) * values.std(ddof=1) / np.sqrt(64)
    assert low < values.mean() < high
    assert abs((high - low) - 2 * t_half) < 0.1 * (2 * t_half)


def test_widening_is_the_ratio_of_t_and_normal_quantiles():
    assert small_sample_widening(6) == pytest.approx(2.570582 / 1.959964, rel=1e-6)
    assert small_sample_widening(6, level=0.9) == pytest.approx(stats.t.ppf(0.95, 5) / stats.norm.ppf(0.95))
    assert small_sample_widening(10_000) == pytest.approx(1.0, abs=1e-3)
    assert small_sample_widening(1) == 1.0


def test_a_group_of_copies_counts_once():
    """Eight copies of each of 12 values, grouped, give the interval of the 12 values alone: copies of one
    scene add no information, whereas read as independent samples they shrink the interval ~sqrt(8)x."""
    scenes = np.random.default_rng(3).normal(0.0, 1.0, size=12)
    copies, groups = np.repeat(scenes, 8), np.repeat(np.arange(12), 8)
    assert np.allclose(bootstrap_ci(copies, groups, seed=5), bootstrap_ci(scenes, seed=5), rtol=0, atol=1e-12)
    naive = bootstrap_ci(copies, seed=5)
    clustered = bootstrap_ci(copies, groups, seed=5)
    assert 2.0 < (clustered[1] - clustered[0]) / (naive[1] - naive[0]) < 4.0


def test_cluster_interval_covers_where_the_plain_one_does_not():
    """Random-effects data (a scene effect of sd 1, crops of sd 0.3 about it; 12 scenes x 16 crops): over 300
    data sets the cluster interval covers the true mean 93% of the time, the plain one, which takes the 192
    crops as independent, 39%."""
    rng = np.random.default_rng(11)
    groups = np.repeat(np.arange(12), 16)
    covered = {"cluster": 0, "plain": 0}
    for trial in range(300):
        values = np.repeat(rng.normal(0.0, 1.0, 12), 16) + rng.normal(0.0, 0.3, 12 * 16)
        for name, g in (("cluster", groups), ("plain", None)):
            low, high = bootstrap_ci(values, g, resamples=1000, seed=trial)
            covered[name] += low <= 0.0 <= high
    assert covered["cluster"] / 300 > 0.9
    assert covered["plain"] / 300 < 0.5


def test_six_groups_keep_95_percent_only_with_the_widening():
    """The sample corpus's validation set has 6 scenes. Over 1000 data sets of 6 scenes x 16 crops (scene sd 1,
    crop sd 0.3), the widened interval covers the true mean 94.6% of the time; the same draws' plain
    percentile interval (variance unbiased, normal quantile) 87.4%, near the 89% the t distribution on 5 dof
    puts within +-1.96."""
    rng = np.random.default_rng(21)
    groups = np.repeat(np.arange(6), 16)
    covered = {"widened": 0, "plain": 0}
    for trial in range(1000):
        values = np.repeat(rng.normal(0.0, 1.0, 6), 16) + rng.normal(0.0, 0.3, 6 * 16)
        low, high = bootstrap_ci(values, groups, resamples=1000, seed=trial)
        covered["widened"] += low <= 0.0 <= high
        low, high = np.quantile(bootstrap_means(values, groups, resamples=1000, seed=trial), [0.025, 0.975])
        covered["plain"] += low <= 0.0 <= high
    assert 0.93 < covered["widened"] / 1000 < 0.97
    assert covered["plain"] / 1000 < 0.91


def test_paired_draws_keep_the_pairing():
    """Two models scored on the same crops: their difference is exact in every draw, though each mean moves."""
    rng = np.random.default_rng(2)
    a = np.repeat(rng.normal(20.0, 3.0, 6), 16) + rng.normal(0.0, 0.5, 96)
    draws = bootstrap_means(np.stack([a, a + 1.5]), np.repeat(np.arange(6), 16), resamples=500)
    assert draws.shape == (500, 2)
    assert np.allclose(draws[:, 1] - draws[:, 0], 1.5)
    assert draws[:, 0].std() > 0.5


def test_degenerate_inputs():
    assert bootstrap_ci([3.0]) == (3.0, 3.0)
    assert all(np.isnan(bootstrap_ci([])))
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert bootstrap_ci([1.0, 2.0, 6.0], groups=["a", "a", "a"]) == (3.0, 3.0)  # one group: nothing to resample
    with pytest.raises(ValueError, match="groups: 2 given for 3 values"):
        bootstrap_ci([1.0, 2.0, 3.0], groups=["a", "b"])
