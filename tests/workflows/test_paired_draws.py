"""The paired bootstrap of a sweep's report against numpy on known data: runs scored on one validation set are
resampled alike, so what they share (a hard scene) cancels in slopes and differences, and runs without
per-sample values fall back to their own intervals."""

from __future__ import annotations

import numpy as np
import pytest

from vitok.bootstrap import bootstrap_ci, bootstrap_means
from workflows.reports.fits import fit_rows
from workflows.reports.paired import DRAWS, attach_paired_draws, row_draws
from workflows.reports.tables import rows_to_csv, rows_to_markdown
from workflows.reports.verdicts import mean_difference

SCENES, CROPS = 6, 16
E_VALUES = (256, 1024, 4096)


def scored_runs(seed: int = 0, gain: float = 1.0):
    """Three runs at E = 256, 1024, 4096 scored on the same 96 crops of 6 scenes: PSNR = a scene's difficulty
    (sd 3 dB, shared by every run) + `gain` dB per doubling of E + crop noise (sd 0.5 dB, own to each run)."""
    rng = np.random.default_rng(seed)
    scene = np.repeat(rng.normal(22.0, 3.0, SCENES), CROPS)
    ids = [f"s{k}" for k in range(SCENES * CROPS)]
    groups = [f"scene{k // CROPS}" for k in range(SCENES * CROPS)]
    rows, tables = [], {}
    for e in E_VALUES:
        psnr = scene + gain * np.log2(e / 256) + rng.normal(0.0, 0.5, SCENES * CROPS)
        low, high = bootstrap_ci(psnr, groups)
        rows.append({"config": f"E{e}", "run_id": f"run{e}", "E": e, "p": 8, "PSNR": float(psnr.mean()),
                     "PSNR_lo": low, "PSNR_hi": high, "status": "finished", "media": "image"})
        order = np.random.default_rng(e).permutation(len(ids))  # each run logged its samples in its own order
        tables[f"run{e}"] = {"sample_id": [ids[k] for k in order], "group": [groups[k] for k in order],
                             "psnr": psnr[order].tolist()}
    return rows, tables, groups


def test_draws_line_up_across_runs_and_match_numpy():
    rows, tables, groups = scored_runs()
    attach_paired_draws(rows, tables)
    draws = row_draws(rows, "PSNR")
    assert draws.shape == (DRAWS, 3)
    # the same picks for every run: numpy's draws of the three runs' values, sorted by sample id
    by_id = [dict(zip(tables[r["run_id"]]["sample_id"], tables[r["run_id"]]["psnr"])) for r in rows]
    ids = sorted(by_id[0])
    values = np.array([[run[i] for i in ids] for run in by_id])
    expected = bootstrap_means(values, [groups[int(i[1:])] for i in ids], DRAWS, seed=0) - values.mean(axis=1)
    assert np.allclose(draws, expected)


def test_paired_slope_interval_is_the_spread_of_refits_and_excludes_the_shared_scenes():
    rows, tables, _ = scored_runs()
    independent = fit_rows(rows, "E", "PSNR")
    attach_paired_draws(rows, tables)
    paired = fit_rows(rows, "E", "PSNR")
    assert paired.slope == pytest.approx(independent.slope)
    # numpy: refit the line in every paired draw; the interval is +-1.96 sd of those slopes
    draws = row_draws(rows, "PSNR") + np.array([r["PSNR"] for r in rows])
    slopes = np.polyfit(np.log2(E_VALUES), draws.T, 1)[0]
    half = (paired.slope_high - paired.slope_low) / 2
    assert half == pytest.approx(1.959963984540054 * slopes.std(), rel=1e-9)
    # the scenes' 3 dB spread is in each run's own interval but cancels between runs
    assert half < 0.25 * (independent.slope_high - independent.slope_low) / 2
    assert paired.slope_low < 1.0 < paired.slope_high  # and it still covers the true gain


def test_paired_difference_cancels_the_scenes():
    rows, tables, _ = scored_runs(gain=0.3)
    _, low_alone, high_alone = mean_difference([rows[1]], [rows[0]], "PSNR", 0.0, 0)
    attach_paired_draws(rows, tables)
    diff, low, high = mean_difference([rows[1]], [rows[0]], "PSNR", 0.0, 0)
    assert low < diff < high and diff == pytest.approx(rows[1]["PSNR"] - rows[0]["PSNR"])
    assert high - low < 0.25 * (high_alone - low_alone)
    assert 0 < low < 0.6 < high  # 0.6 dB apart: sure once the shared scenes cancel, and covered


def test_runs_without_per_sample_values_or_of_other_sets_are_not_paired():
    rows, tables, _ = scored_runs()
    other = dict(tables["run4096"], sample_id=[f"v{k}" for k in range(SCENES * CROPS)])  # a different set
    attach_paired_draws(rows, {"run256": tables["run256"], "run1024": tables["run1024"], "run4096": other})
    assert rows[0]["draws"]["set"] == rows[1]["draws"]["set"] != rows[2]["draws"]["set"]
    assert row_draws(rows[:2], "PSNR") is not None
    assert row_draws(rows, "PSNR") is None  # mixed sets: each run's own interval is used instead
    rows[2].pop("draws")
    assert row_draws(rows, "PSNR") is None
    assert fit_rows(rows, "E", "PSNR").slope_low is not None  # from the runs' own intervals


def test_tables_leave_the_draws_out():
    rows, tables, _ = scored_runs()
    attach_paired_draws(rows, tables)
    assert "draws" not in rows_to_csv(rows).splitlines()[0]
    assert "draws" not in rows_to_markdown(rows).splitlines()[0]
