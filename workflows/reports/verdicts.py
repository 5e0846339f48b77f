"""What every finding shares: the verdicts, the Finding record, the paper's claims, and the interval arithmetic
the rules use (the evaluation's uncertainty from the runs' paired bootstrap draws where they all have them,
else each run's own 95% interval read as a standard deviation; plus the run-to-run variance of seed
replicates; Bonferroni where a rule picks the best of several)."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workflows.reports.fits import half_width, replicate_variance, sd_from_interval
from workflows.reports.numbers import signed
from workflows.reports.paired import row_draws

if TYPE_CHECKING:  # the rows' type only: the report reads their attributes
    from workflows.sweeps.summary import SummaryRow

PAPER_FILE = Path(__file__).resolve().parent / "paper_findings.json"
HOLDS, FAILS, INCONCLUSIVE, NO_DATA = "holds", "does not hold", "inconclusive", "not enough data"


@dataclass
class Finding:
    id: str
    claim: str
    paper: str
    verdict: str
    rule: str
    measured: list[str] = field(default_factory=list)
    # Seed replicates per config among the runs judged (the fewest any config has; 0: not counted). With one,
    # training noise was not measured, and a holds / does not hold says so (`label`).
    seeds: int = 0

    @property
    def label(self) -> str:
        """The verdict as findings.md and the console print it: a decided verdict from single-seed runs is
        labelled, since run-to-run noise is in none of its intervals."""
        if self.seeds == 1 and self.verdict in (HOLDS, FAILS):
            return f"{self.verdict} (1 seed: training noise not measured)"
        return self.verdict


def load_paper(path: Path = PAPER_FILE) -> dict[str, Any]:
    return json.loads(path.read_text())["findings"]


def finished_rows(rows: list[SummaryRow]) -> list[SummaryRow]:
    return [r for r in rows if r.finished]


def rows_with(rows: list[SummaryRow], key: str) -> list[SummaryRow]:
    return [r for r in rows if r.metric(key) is not None]


def combine_verdicts(verdicts: list[str]) -> str:
    """One verdict from several: any "does not hold" wins, then any "inconclusive"."""
    judged = [v for v in verdicts if v != NO_DATA]
    if not judged:
        return NO_DATA
    for verdict in (FAILS, INCONCLUSIVE):
        if verdict in judged:
            return verdict
    return HOLDS


def side_of(low: float, high: float, threshold: float) -> int:
    """+1 when the interval lies above `threshold`, -1 below, 0 when it straddles (or touches) it."""
    return 1 if low > threshold else -1 if high < threshold else 0


def sure_side_of(low: float, high: float, threshold: float) -> int:
    """`side_of` for a verdict: an interval of zero width (one validation unit, runs that logged no interval, no
    seed replicates) measured no uncertainty, so it is never sure: 0. Every rule decides through this."""
    return side_of(low, high, threshold) if high > low else 0


# Why a rule that had no interval to go by is inconclusive.
NO_INTERVAL = "no interval was measured (no run logged one, one validation unit, no seed replicates): nothing is sure"


def ci_text(low: float, high: float, fmt: str = "+.3g", unit: str = "") -> str:
    if not high > low:
        return "[no interval: no run logged one, no seed replicates]"
    return f"[95% CI {signed(low, fmt)}, {signed(high, fmt)}{unit}]"


def seeds_per_config(rows: list[SummaryRow]) -> int:
    """The fewest runs any design (config apart from name and seed) has among `rows`: 1 when some config ran
    with a single seed; 0 without rows."""
    counts: dict[Any, int] = {}
    for r in rows:
        design = r.design or id(r)
        counts[design] = counts.get(design, 0) + 1
    return min(counts.values(), default=0)


def replicate_noise(rows: list[SummaryRow], key: str) -> tuple[float, int]:
    """Run-to-run variance of `key` among seed replicates (same design) and its degrees of freedom."""
    points = rows_with(rows, key)
    return replicate_variance([r.metric(key) for r in points], [r.design or id(r) for r in points])


def group_mean(runs: list[SummaryRow], key: str, run_var: float) -> tuple[float, float, float]:
    """The mean `key` of a group of runs (one tokenisation's seed replicates at one E, say), the evaluation's
    variance of that mean (from the runs' paired draws or else their own intervals) and the run-to-run part
    (`run_var` over the number of runs)."""
    draws = row_draws(runs, key)
    if draws is not None:
        own = float(np.var(draws.mean(axis=1)))
    else:
        own = sum(sd_from_interval(*r.interval(key)) ** 2 for r in runs) / len(runs) ** 2
    return statistics.fmean(r.metric(key) for r in runs), own, run_var / len(runs)


def mean_difference(on: list[SummaryRow], off: list[SummaryRow], key: str, run_var: float, dof: int,
                    comparisons: int = 1) -> tuple[float, float, float]:
    """mean(on) - mean(off) of `key` and its 95% interval (the evaluation's uncertainty plus run-to-run noise,
    each widened once: `half_width`), Bonferroni-widened for `comparisons` when `on` or `off` was picked as the
    best of several. Runs scored on one validation set, all with paired draws, are compared draw by draw, so
    what they share cancels."""
    mean_on, evaluation_on, runs_on = group_mean(on, key, run_var)
    mean_off, evaluation_off, runs_off = group_mean(off, key, run_var)
    evaluation = evaluation_on + evaluation_off
    draws = row_draws(on + off, key)
    if draws is not None:
        evaluation = float(np.var(draws[:, :len(on)].mean(axis=1) - draws[:, len(on):].mean(axis=1)))
    half = half_width(evaluation, runs_on + runs_off, dof, comparisons)
    return mean_on - mean_off, mean_on - mean_off - half, mean_on - mean_off + half
