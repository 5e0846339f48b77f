"""The GPU check's dry run (`bash bench/device/run.sh --dry OUT`): every stage of the GPU run on this CPU at tiny
sizes, so the command handed to the GPU machine is known to run end to end, and its JSON to hold the figures."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.integration
@pytest.mark.timeout(1260)
def test_dry_run_measures_every_stage(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(["bash", "bench/device/run.sh", "--dry", str(out)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        # The limit is for a shared 2-core machine under load (docs/gpu_check.md: its measured duration).
        _, stderr = proc.communicate(timeout=1200)
    except subprocess.TimeoutExpired:
        proc.terminate()  # the check ends its running stage and that stage's Ray cluster (SIGTERM handler)
        proc.communicate()
        pytest.fail(f"dry run still running after 1200 s; its logs: {out / 'logs'}")
    assert proc.returncode == 0, stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["complete"] and not report["errors"], report["errors"]
    for key in ("date", "git_commit", "hardware", "torch", "versions", "matmul_peak_bf16_gflops", "skipped"):
        assert key in report, key
    assert report["matmul_peak_bf16_gflops"] > 0
    assert set(report["trainer"]) == {"zero0-eager", "zero2-eager"}
    for run in [*report["trainer"].values(), report["generator"]]:
        assert run["exit"] == 0 and run["samples_per_s"] > 0, run
    assert report["cache_latents"]["exit"] == 0
    assert report["step_profile"]["exit"] == 0, report["step_profile"]
    profile = report["step_profile"]["report"]
    assert profile["complete"] and all(profile[k] > 0 for k in ("trainer_step_s_median", "stock_vs_tuned",
                                                                 "plain_vs_trainer"))  # fmt: skip
    assert (out / "logs" / "stages.log").read_text().count("===== stage ") == 6  # every stage's output, one file
    for plain in report["plain"].values():
        assert plain["samples_per_s_median"] > 0
    summary = report["summary"]
    assert set(summary["ratios"]) == {"zero0-eager_vs_plain_eager", "zero2-eager_vs_plain_eager",
                                      "generator_vs_plain_eager"}  # fmt: skip
    assert summary["finite"] and all(math.isfinite(v) and v > 0 for v in summary["ratios"].values())
    assert all(v > 0 for v in summary["mfu"].values())
    # The dry run does not pretend to check the GPU goals.
    assert all(goal["met"] is None and goal["not_checked"] for goal in summary["goals"].values())
