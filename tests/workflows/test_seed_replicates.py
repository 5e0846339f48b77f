"""A sweep file's `seeds:` end to end without training: the replicates it expands into share a design in their
summary rows, the report groups them per config, and the seeds' spread enters every interval (the per-config
one, the slope's). Pure and fast."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from workflows.reports.findings import HOLDS, findings_markdown, judge_findings
from workflows.reports.fits import Z95, fit_rows
from workflows.sweeps.planning import plan_from_input
from workflows.sweeps.summary import summary_row
from workflows.sweeps.sweep_file import parse_sweep
from workflows.tracking import RunResult

PSNR = {4: 18.6, 16: 20.7, 64: 22.5}  # per channel count c (E = L x c)
SPREAD = {0: -0.3, 1: 0.0, 2: 0.3}  # what each seed adds: sd 0.3 dB between seeds
HALF = 0.1  # each run's own 95% interval


def seeded_rows():
    sweep = parse_sweep({"sweep": "s", "experiment": "e", "seeds": [0, 1, 2],
                         "base": {"model": {"variant": "N-N/8"}, "train": {"steps": 20}},
                         "axes": {"grid": {"model.channels": [4, 16, 64]}}}, "f.yaml")
    rows = []
    for config in sweep.configs:
        psnr = PSNR[config.model.channels] + SPREAD[config.train.seed]
        metrics = {"eval_samples": 96.0, "eval_groups": 12.0, "eval_psnr": psnr, "eval_psnr_ci_low": psnr - HALF,
                   "eval_psnr_ci_high": psnr + HALF}
        rows.append(summary_row(plan_from_input(config, 1, 64), RunResult(config.name, metrics, 1.0)))
    return rows


def test_replicates_share_a_design_and_are_grouped_per_config():
    rows = seeded_rows()
    assert [r.config for r in rows[:3]] == ["c4-s0", "c4-s1", "c4-s2"]
    assert len({r.design for r in rows}) == 3 and [r.seed for r in rows[:3]] == [0, 1, 2]
    findings = judge_findings(rows, "e_sweep")
    assert findings[0].seeds == 3 and findings[0].label == findings[0].verdict  # no single-seed label
    text = findings_markdown(findings, "s", "e_sweep", 9, 9, rows)
    (line,) = [t for t in text.splitlines() if t.startswith("| c16 |")]
    low, high = (float(v) for v in line.split("[95% CI ")[1].split("]")[0].split(", "))
    # the mean of 3 seeds: each run's +-0.1 dB (normal quantile: its interval is already widened) and the seeds'
    # pooled variance 0.09 over 3 (Student's t on the 6 replicate dof), each widened once
    half = math.sqrt(Z95**2 * 3 * (HALF / Z95) ** 2 / 9 + stats.t.ppf(0.975, 6) ** 2 * 0.09 / 3)
    assert "| c16 | 0, 1, 2 | 20.70 " in line
    assert (low, high) == (pytest.approx(20.7 - half, abs=0.006), pytest.approx(20.7 + half, abs=0.006))
    assert half > 2 * HALF  # twice the runs' own intervals: the seed spread is in it


def test_the_seed_spread_widens_the_slope_interval():
    rows = seeded_rows()
    with_seeds = fit_rows(rows, "E", "PSNR")
    assert with_seeds.replicate_dof == 6 and with_seeds.run_sd == pytest.approx(0.3)
    one_seed = fit_rows([r for r in rows if r.seed == 1], "E", "PSNR")
    assert with_seeds.slope == pytest.approx(one_seed.slope)
    assert with_seeds.slope_high - with_seeds.slope_low > 2 * (one_seed.slope_high - one_seed.slope_low)
    lx = np.log2([r.E for r in rows])
    weights = (lx - lx.mean()) / np.sum((lx - lx.mean()) ** 2)
    half = math.sqrt(Z95**2 * np.sum(weights**2) * (HALF / Z95) ** 2
                     + stats.t.ppf(0.975, 6) ** 2 * np.sum(weights**2) * 0.09)
    assert (with_seeds.slope_high - with_seeds.slope_low) / 2 == pytest.approx(half, rel=1e-6)
    assert judge_findings(rows, "e_sweep")[0].verdict == HOLDS
