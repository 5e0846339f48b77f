"""Least-squares trends of a sweep: metric = slope x log2(x) + intercept, with R².

Pure numpy. With fewer than three points a line always fits (R² = 1 for two points), so R² is reported
as not meaningful (`None`) and the findings say "not enough data".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

MIN_POINTS = 3  # below this, R² says nothing about the trend


@dataclass(frozen=True)
class Fit:
    slope: float  # metric units per doubling of x (x is on a log2 axis)
    intercept: float  # the metric at x = 1
    r2: float | None  # None: fewer than MIN_POINTS points, or x or y does not vary
    n: int

    def predict(self, x: float | np.ndarray) -> float | np.ndarray:
        return self.slope * np.log2(x) + self.intercept

    def describe(self, unit: str = "") -> str:
        r2 = f"R² = {self.r2:.2f}" if self.r2 is not None else "R² not meaningful"
        return f"{self.slope:+.3g}{unit} per doubling, {r2} (n = {self.n})"


def fit_log2(x: Sequence[float], y: Sequence[float]) -> Fit | None:
    """Fits y against log2(x), ignoring points where either is missing (None/NaN) or x <= 0.

    Returns None when fewer than two usable points or x takes a single value (no line to fit).
    """
    pairs = [
        (float(a), float(b)) for a, b in zip(x, y)
        if a is not None and b is not None and not math.isnan(float(a)) and not math.isnan(float(b)) and float(a) > 0
    ]
    if len(pairs) < 2:
        return None
    lx = np.log2([a for a, _ in pairs])
    ly = np.array([b for _, b in pairs])
    if np.ptp(lx) == 0:
        return None
    slope, intercept = np.polyfit(lx, ly, 1)
    residual = float(np.sum((ly - (slope * lx + intercept)) ** 2))
    total = float(np.sum((ly - ly.mean()) ** 2))
    r2 = None
    if len(pairs) >= MIN_POINTS and total > 0:
        r2 = 1.0 - residual / total
    return Fit(slope=float(slope), intercept=float(intercept), r2=r2, n=len(pairs))
