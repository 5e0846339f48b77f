"""The bootstrap interval against numpy on known data."""

from __future__ import annotations

import numpy as np

from vitok.bootstrap import bootstrap_ci


def test_interval_matches_a_direct_numpy_bootstrap():
    values = np.random.default_rng(1).normal(25.0, 2.0, size=64)
    low, high = bootstrap_ci(values, resamples=4000, seed=7)
    rng = np.random.default_rng(7)
    means = values[rng.integers(0, 64, size=(4000, 64))].mean(axis=1)
    assert (low, high) == tuple(np.quantile(means, [0.025, 0.975]))
    # and it covers the sample mean, about +-1.96 standard errors wide
    se = values.std(ddof=1) / np.sqrt(64)
    assert low < values.mean() < high
    assert abs((high - low) - 2 * 1.96 * se) < 0.25 * (2 * 1.96 * se)


def test_degenerate_inputs():
    assert bootstrap_ci([3.0]) == (3.0, 3.0)
    assert all(np.isnan(bootstrap_ci([])))
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
