"""Paired bootstrap draws for a sweep's runs: the runs are scored on the same validation samples, so a
comparison between them should resample those samples once, for all runs alike, not treat each run's
interval as independent noise.

Each training run logs its per-sample values with each sample's id and independent unit
(`tracking.PER_SAMPLE_ARTIFACT`). Runs scored on the same samples (the same ids, in the same units) form one
validation set; for each set, every draw picks its units with replacement once (vitok.bootstrap) and takes
every run's mean over the picked samples. A row then carries `row.draws[metric]`: its draws minus its mean,
(DRAWS,) deviations that line up draw by draw with those of every other row of its set (whose number is
`row.draws["set"]`). The draws are `vitok.bootstrap.interval_draws`, widened for the set's count of units
as each run's own interval is, so that an interval a report takes from them with the normal quantile (a
slope's, a difference's) or from their percentiles (R²'s) keeps 95% with a handful of units; with 6 scenes
they are 1.31x the bootstrap's. Rows of different sets (images and video, say) get their own picks, so they
are drawn independently. Fits and differences use these deviations where every row they compare has them
(workflows.reports.fits, verdicts), and each run's own interval otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from vitok.bootstrap import DEFAULT_RESAMPLES, interval_draws

if TYPE_CHECKING:  # the rows' type only: the report reads their attributes
    from workflows.sweeps.summary import SummaryRow

DRAWS = DEFAULT_RESAMPLES
# summary column -> the per-sample values' name in the evaluation's table
PER_SAMPLE_COLUMNS = {"PSNR": "psnr", "SSIM": "ssim", "LPIPS": "lpips"}


def validation_set(table: dict[str, list]) -> tuple[tuple[str, str], ...]:
    """What identifies the samples a run was scored on: (sample id, unit) pairs, sorted."""
    return tuple(sorted(zip(table["sample_id"], table["group"])))


def attach_paired_draws(rows: list[SummaryRow], tables: dict[str, dict[str, list]],
                        seed: int = 0) -> list[SummaryRow]:
    """The rows, each whose run (`row.run_id`) has a per-sample table in `tables` with its `draws` set."""
    sets: dict[tuple[tuple[str, str], ...], list[int]] = {}
    for k, row in enumerate(rows):
        table = tables.get(row.run_id)
        if table and table["sample_id"]:
            sets.setdefault(validation_set(table), []).append(k)
    draws_of: dict[int, dict[str, Any]] = {}
    for number, (samples, members) in enumerate(sets.items()):
        ids, groups = [s for s, _ in samples], [g for _, g in samples]
        for k in members:
            draws_of[k] = {"set": number}
        for column, name in PER_SAMPLE_COLUMNS.items():
            scored = [k for k in members if name in tables[rows[k].run_id]]
            if not scored:
                continue
            values = np.stack([_in_order(tables[rows[k].run_id], name, ids) for k in scored])
            draws = interval_draws(values, groups, DRAWS, seed)
            for j, k in enumerate(scored):
                draws_of[k][column] = draws[:, j] - values[j].mean()
    return [row.with_draws(draws_of[k]) if k in draws_of else row for k, row in enumerate(rows)]


def _in_order(table: dict[str, list], name: str, ids: list[str]) -> np.ndarray:
    position = {sample: k for k, sample in enumerate(table["sample_id"])}
    return np.array([table[name][position[sample]] for sample in ids], dtype=np.float64)


def row_draws(rows: list[SummaryRow], metric: str) -> np.ndarray | None:
    """(DRAWS, len(rows)) paired deviations of `metric`, or None unless every row has them from one
    validation set (the draws of different sets are not paired, so they are not mixed)."""
    found = [(r.draws or {}).get(metric) for r in rows]
    if not rows or any(d is None for d in found) or len({r.draws["set"] for r in rows}) != 1:
        return None
    return np.stack(found, axis=1)
