"""Percentile bootstrap intervals for a statistic of per-sample values (e.g. the mean PSNR over a validation
set), so every reported metric can carry its n and an interval. Pure numpy; seeded, so reruns agree."""

from __future__ import annotations

from typing import Callable

import numpy as np

DEFAULT_RESAMPLES = 2000


def bootstrap_ci(values, level: float = 0.95, resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                 statistic: Callable[[np.ndarray], np.ndarray] = lambda a: a.mean(axis=-1)) -> tuple[float, float]:
    """The percentile bootstrap interval of `statistic` over `values` (1-D), at confidence `level`.

    Draws `resamples` samples of len(values) with replacement; `statistic` maps (resamples, n) -> (resamples,).
    With one value the interval is that value (nothing to resample); with none it is (nan, nan).
    """
    data = np.asarray(values, dtype=np.float64).ravel()
    if data.size == 0:
        return float("nan"), float("nan")
    if data.size == 1:
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    draws = data[rng.integers(0, data.size, size=(resamples, data.size))]
    stats = statistic(draws)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    return float(low), float(high)
