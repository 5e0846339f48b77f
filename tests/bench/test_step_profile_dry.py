"""`bench/device/step_profile.py --dry`: the GPU's step profile on this CPU at tiny sizes, so the script handed to
the GPU machine is known to run, and its JSON to hold every figure (docs/gpu_check.md, section 6)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from tests.helpers import REPO, free_port


def test_dry_run_times_the_tuned_and_stock_trainer_and_the_plain_step(tmp_path):
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "MASTER_PORT": str(free_port())}
    proc = subprocess.run([sys.executable, "bench/device/step_profile.py", "--dry", "--zero", "2", "--out",
                           str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "step_profile_zero2.json").read_text())
    assert report["complete"] and report["settings"]["zero_stage"] == 2
    for key in ("trainer_step_s_median", "trainer_stock_step_s_median", "trainer_tuned_step_s_median_both_runs",
                "stock_vs_tuned", "plain_step_s_median", "plain_vs_trainer"):  # fmt: skip
        assert math.isfinite(report[key]) and report[key] > 0, (key, report[key])
    table = report["top_by_self_cpu_time"]
    assert table and all(row["calls_per_step"] > 0 for row in table)
