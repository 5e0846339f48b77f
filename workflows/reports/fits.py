"""Least-squares trends of a sweep: metric = slope x log2(x) + intercept, with R² and the slope's 95% interval.

The least-squares slope is a fixed weighted sum of the runs' values, so its uncertainty follows from theirs:
the evaluation's, plus, where the sweep repeats a design with other seeds, the run-to-run variance those
replicates show (pooled; that part's quantile is Student's t on their degrees of freedom). The evaluation's
part takes the normal quantile: the runs' intervals and paired draws already carry the small-sample widening
for their number of validation units (vitok.bootstrap), so each part is widened once (`half_width`).
Without replicates the run-to-run noise is not measured and the interval says so. The evaluation's part
comes from the paired bootstrap draws when every run has them (workflows.reports.paired: all runs scored on
one validation set, resampled alike, so what the runs share, such as a hard scene, moves them together and
cancels in the slope); otherwise each run's own 95% interval is read as a standard deviation, independent
of the others'. How well a straight line describes the runs is a separate question, answered by R²; its 95%
interval comes from refits with every run redrawn within its uncertainty (by the paired draws, or a normal
of the run's own), as percentiles, with the noise each redraw adds taken out of its sums of squares
(`Fit.r2_interval` says why), and the paired draws carry the small-sample widening of
workflows.reports.paired.

Pure numpy (scipy for the t quantile). With fewer than three points a line always fits (R² = 1 for two
points), so R² is reported as not meaningful (`None`) and the findings say "not enough data".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Hashable, Sequence

import numpy as np
from scipy.stats import norm
from scipy.stats import t as student_t

from workflows.reports.numbers import signed
from workflows.reports.paired import row_draws

if TYPE_CHECKING:  # the rows' type only: the report reads their attributes
    from workflows.sweeps.summary import SummaryRow

MIN_POINTS = 3  # below this, R² says nothing about the trend
LEVEL = 0.95
Z95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval


@dataclass(frozen=True)
class Fit:
    slope: float  # metric units per doubling of x (x is on a log2 axis)
    intercept: float  # the metric at x = 1
    r2: float | None  # None: fewer than MIN_POINTS points, or x or y does not vary
    n: int
    slope_low: float | None = None  # the slope's 95% interval; None: no uncertainty was measured
    slope_high: float | None = None
    run_sd: float | None = None  # run-to-run standard deviation from seed replicates; None: no replicates
    replicate_dof: int = 0  # degrees of freedom of run_sd
    # The points and each one's standard deviation (evaluation and run-to-run), for resampling the fit.
    log2_x: tuple[float, ...] = field(default=(), repr=False)
    y: tuple[float, ...] = field(default=(), repr=False)
    y_sd: tuple[float, ...] = field(default=(), repr=False)
    # (draws, n) paired bootstrap deviations of the points' values (None: the points are redrawn independently)
    y_dev: np.ndarray | None = field(default=None, repr=False, compare=False)

    def predict(self, x: float | np.ndarray) -> float | np.ndarray:
        return self.slope * np.log2(x) + self.intercept

    def interval(self) -> tuple[float, float]:
        """The slope's 95% interval; (slope, slope) when none was measured."""
        if self.slope_low is None or self.slope_high is None:
            return self.slope, self.slope
        return self.slope_low, self.slope_high

    def describe(self, unit: str = "") -> str:
        r2 = f"R² = {self.r2:.2f}" if self.r2 is not None else "R² not meaningful"
        r2_ci = self.r2_interval()
        r2 += f" [95% CI {r2_ci[0]:.2f}, {r2_ci[1]:.2f}]" if r2_ci else ""
        if self.slope_low is None:
            ci = " [no interval: no run logged one, no seed replicates]"
        else:
            ci = f" [95% CI {signed(self.slope_low)}, {signed(self.slope_high)}]"
        noise = (f"run-to-run sd {self.run_sd:.3g}{unit} from {self.replicate_dof} replicate dof"
                 if self.run_sd is not None else "no seed replicates")
        slope = round(self.slope, 9)  # an exact zero's float noise (-4e-16) is zero
        return f"{signed(slope)}{unit} per doubling{ci}, {r2} (n = {self.n} runs; {noise})"

    def _redraw(self, draws: int, seed: int) -> np.ndarray:
        """(draws, n) copies of the points' values: with paired deviations, the i-th copy adds the i-th of them
        (so fits of rows of one validation set redraw in step) and a normal of the run-to-run sd; without,
        each point is redrawn from a normal of its sd."""
        y, noise = np.array(self.y), np.random.default_rng(seed).normal(size=(draws, len(self.y)))
        if self.y_dev is None:
            return y + noise * np.array(self.y_sd)
        return y + self.y_dev[np.arange(draws) % len(self.y_dev)] + noise * (self.run_sd or 0.0)

    def resample(self, draws: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(slopes, intercepts) of `draws` refits with the points redrawn within their uncertainty (`_redraw`)."""
        lx, ys = np.array(self.log2_x), self._redraw(draws, seed)
        slopes = ys @ _slope_weights(lx)
        return slopes, ys.mean(axis=1) - slopes * lx.mean()

    def r2_interval(self, draws: int = 4000, seed: int = 0) -> tuple[float, float] | None:
        """R²'s 95% interval: percentiles of R² over refits of redrawn points, each with the noise its redraw
        added taken out; None without R² or uncertainty.

        A redraw adds the points' noise once more to values that already carry it, and noise inflates the residual
        sum of squares relatively more than the total, so plain refits sit below R² by as much as the noise is large
        against the spread of the runs: with per-run sd 1.5 dB on a five-point curve of true R² 0.93, the plain
        percentile interval covered it 58% of the time and was surely below 0.9 in 28% of data sets. Each refit's
        sums of squares here lose what the redraw's noise adds to them on average (the sums of squares of the redraw
        deviations themselves, averaged over the draws), so the draws centre on the measured R²; that interval
        covered 92-98% in the same simulations, paired or not.
        """
        if self.r2 is None or not (any(self.y_sd) or self.y_dev is not None):
            return None
        lx, y = np.array(self.log2_x), np.array(self.y)
        ys = self._redraw(draws, seed)
        residual, total = _sums_of_squares(lx, ys)
        noise_residual, noise_total = (float(part.mean()) for part in _sums_of_squares(lx, ys - y))
        signal = total - noise_total
        # Where the redraw's spread is all noise, the draw shows no trend: R² 0.
        ratio = np.maximum(residual - noise_residual, 0.0) / np.where(signal > 0, signal, 1.0)
        r2 = np.where(signal > 0, np.clip(1.0 - ratio, 0.0, 1.0), 0.0)
        low, high = np.quantile(r2, [0.025, 0.975])
        return float(low), float(high)


def sd_from_interval(low: float | None, high: float | None) -> float:
    """The standard deviation a symmetric normal 95% interval implies; 0.0 when it is missing."""
    if not (_usable(low) and _usable(high)):
        return 0.0
    return max(0.0, (float(high) - float(low)) / (2 * Z95))


def replicate_variance(y: Sequence[float], groups: Sequence[Hashable]) -> tuple[float, int]:
    """Pooled within-group variance of `y` and its degrees of freedom (0.0, 0 when no group repeats)."""
    sums: dict[Hashable, list[float]] = {}
    for value, group in zip(y, groups):
        sums.setdefault(group, []).append(float(value))
    squares = sum(float(np.sum((np.array(v) - np.mean(v)) ** 2)) for v in sums.values())
    dof = sum(len(v) - 1 for v in sums.values())
    return (squares / dof, dof) if dof else (0.0, 0)


def quantile(dof: int, comparisons: int = 1) -> float:
    """The two-sided quantile that keeps `comparisons` intervals 95% sure together (Bonferroni): Student's t
    when a variance was estimated from `dof` replicates, else the normal one."""
    upper = 1 - (1 - LEVEL) / (2 * comparisons)
    return float(student_t.ppf(upper, dof) if dof else norm.ppf(upper))


def half_width(evaluation_var: float, run_var: float, dof: int, comparisons: int = 1) -> float:
    """The 95% half-width of an estimate whose variance is the evaluation's `evaluation_var` plus the
    run-to-run `run_var` (estimated from seed replicates on `dof` degrees of freedom). The evaluation's part
    takes the normal quantile, since the runs' intervals and paired draws already carry the t-over-normal
    widening for their validation units; only the replicates' part takes Student's t: each widened once."""
    return math.sqrt(quantile(0, comparisons) ** 2 * evaluation_var + quantile(dof, comparisons) ** 2 * run_var)


def _usable(value: Any) -> bool:
    return value is not None and not math.isnan(float(value))


def _sums_of_squares(lx: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `ys` (draws, n): the residual and the total sum of squares of its least-squares line."""
    centred = ys - ys.mean(axis=1, keepdims=True)
    slopes = ys @ _slope_weights(lx)
    residual = centred - slopes[:, None] * (lx - lx.mean())
    return np.sum(residual**2, axis=1), np.sum(centred**2, axis=1)


def _slope_weights(lx: np.ndarray) -> np.ndarray:
    """w with slope = w . y for the least-squares line through (lx, y)."""
    centred = lx - lx.mean()
    return centred / np.sum(centred**2)


def fit_log2(x: Sequence[float], y: Sequence[float], y_sd: Sequence[float | None] | None = None,
             groups: Sequence[Hashable] | None = None, y_dev: np.ndarray | None = None) -> Fit | None:
    """Fits y against log2(x), ignoring points where either is missing (None/NaN) or x <= 0.

    `y_sd`: each point's evaluation standard deviation (None or missing: 0). `groups`: each point's design;
    points of one design are seed replicates (default: every point its own design, so no replicates).
    `y_dev`: (draws, len(x)) paired bootstrap deviations of the values, used in place of `y_sd` when given.
    Returns None when fewer than two usable points or x takes a single value (no line to fit).
    """
    y_sd = list(y_sd) if y_sd is not None else [None] * len(x)
    groups = list(groups) if groups is not None else list(range(len(x)))
    kept = [k for k, (a, b) in enumerate(zip(x, y)) if _usable(a) and _usable(b) and float(a) > 0]
    points = [(float(x[k]), float(y[k]), float(y_sd[k]) if _usable(y_sd[k]) else 0.0, groups[k]) for k in kept]
    dev = y_dev[:, kept] if y_dev is not None else None
    if len(points) < 2:
        return None
    lx = np.log2([p[0] for p in points])
    ly = np.array([p[1] for p in points])
    if np.ptp(lx) == 0:
        return None
    slope, intercept = np.polyfit(lx, ly, 1)
    residual = float(np.sum((ly - (slope * lx + intercept)) ** 2))
    total = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - residual / total if len(points) >= MIN_POINTS and total > 0 else None
    run_var, dof = replicate_variance(ly, [p[3] for p in points])
    weights = _slope_weights(lx)
    if dev is None:
        evaluation_var = np.array([p[2] for p in points]) ** 2
        slope_evaluation_var = float(np.sum(weights**2 * evaluation_var))
    else:  # the evaluation's part of the slope's variance, with the runs' shared resampling in it
        evaluation_var = dev.var(axis=0)
        slope_evaluation_var = float(np.var(dev @ weights))
    point_var = evaluation_var + run_var
    slope_run_var = float(np.sum(weights**2)) * run_var
    low = high = None
    if slope_evaluation_var + slope_run_var > 0:
        half = half_width(slope_evaluation_var, slope_run_var, dof)
        low, high = float(slope) - half, float(slope) + half
    return Fit(
        slope=float(slope), intercept=float(intercept), r2=r2, n=len(points), slope_low=low, slope_high=high,
        run_sd=math.sqrt(run_var) if dof else None, replicate_dof=dof,
        log2_x=tuple(lx.tolist()), y=tuple(ly.tolist()), y_sd=tuple(np.sqrt(point_var).tolist()), y_dev=dev,
    )


def fit_rows(rows: list[SummaryRow], x_key: str, metric: str) -> Fit | None:
    """`fit_log2` over a sweep's summary rows: y = row.metric(metric), its uncertainty from the rows' paired
    draws when all have them, else from row.interval(metric), and replicate groups from row.design (rows
    without one are each their own design)."""
    points = [r for r in rows if r.metric(metric) is not None and r.metric(x_key) is not None]
    return fit_log2(
        [r.metric(x_key) for r in points], [r.metric(metric) for r in points],
        [sd_from_interval(*r.interval(metric)) for r in points],
        [r.design or id(r) for r in points], row_draws(points, metric),
    )
