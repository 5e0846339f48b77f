"""What every finding shares: the verdicts, the Finding record, the paper's claims, and the interval arithmetic
the rules use (the evaluation's uncertainty from the runs' paired bootstrap draws where they all have them,
else each run's own 95% interval read as a standard deviation; plus the run-to-run variance of seed
replicates; Bonferroni where a rule picks the best of several)."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import norm
from scipy.stats import t as student_t

from workflows.reports.fits import LEVEL, replicate_variance, sd_from_interval
from workflows.reports.paired import row_draws

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


def load_paper(path: Path = PAPER_FILE) -> dict[str, Any]:
    return json.loads(path.read_text())["findings"]


def finished_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if str(r.get("status", "finished")) == "finished"]


def rows_with(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [r for r in rows if r.get(key) is not None]


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
    """`side_of`, except that an interval of zero width (no run logged one and no seed replicates, as for gFID
    without seeds) is never sure: 0."""
    return side_of(low, high, threshold) if high > low else 0


def ci_text(low: float, high: float, fmt: str = "+.3g", unit: str = "") -> str:
    return f"[95% CI {low:{fmt}}, {high:{fmt}}{unit}]"


def replicate_noise(rows: list[dict[str, Any]], key: str) -> tuple[float, int]:
    """Run-to-run variance of `key` among seed replicates (same design) and its degrees of freedom."""
    points = rows_with(rows, key)
    return replicate_variance([r[key] for r in points], [r.get("design") or id(r) for r in points])


def group_mean(runs: list[dict[str, Any]], key: str, run_var: float) -> tuple[float, float, list[dict[str, Any]]]:
    """The mean `key` of a group of runs (one tokenisation's seed replicates at one E, say), its variance (the
    evaluation's, from the runs' paired draws or else their own intervals, plus the run-to-run variance
    `run_var`), and the runs."""
    draws = row_draws(runs, key)
    if draws is not None:
        own = float(np.var(draws.mean(axis=1)))
    else:
        own = sum(sd_from_interval(r.get(f"{key}_lo"), r.get(f"{key}_hi")) ** 2 for r in runs) / len(runs) ** 2
    return statistics.fmean(r[key] for r in runs), own + run_var / len(runs), runs


def bonferroni_quantile(dof: int, comparisons: int) -> float:
    """The two-sided quantile that keeps `comparisons` intervals 95% sure together (Bonferroni); for one
    comparison it is `quantile`'s."""
    upper = 1 - (1 - LEVEL) / (2 * comparisons)
    return float(student_t.ppf(upper, dof) if dof else norm.ppf(upper))


def mean_difference(on: list[dict[str, Any]], off: list[dict[str, Any]], key: str, run_var: float, dof: int,
                     comparisons: int = 1) -> tuple[float, float, float]:
    """mean(on) - mean(off) of `key` and its 95% interval (the evaluation's uncertainty plus run-to-run noise),
    widened for `comparisons` when `on` or `off` was picked as the best of several. Runs scored on one
    validation set, all with paired draws, are compared draw by draw, so what they share cancels."""
    mean_on, var_on, _ = group_mean(on, key, run_var)
    mean_off, var_off, _ = group_mean(off, key, run_var)
    variance = var_on + var_off
    draws = row_draws(on + off, key)
    if draws is not None:
        paired = draws[:, :len(on)].mean(axis=1) - draws[:, len(on):].mean(axis=1)
        variance = float(np.var(paired)) + run_var / len(on) + run_var / len(off)
    half = bonferroni_quantile(dof, comparisons) * math.sqrt(variance)
    return mean_on - mean_off, mean_on - mean_off - half, mean_on - mean_off + half

