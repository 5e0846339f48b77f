"""`bench/training/zero_split.py --quick`: every case of the two-worker step split runs (the plain step, the trainer's
step with one rank and with two over gloo, at ZeRO-0 and ZeRO-2), and its JSON holds each phase and what follows."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from tests.helpers import REPO
from workflows.runtime.precision import resolve_precision


def test_quick_run_times_every_case_by_phase():
    env = {**os.environ, "DS_ACCELERATOR": "cpu"}
    proc = subprocess.run([sys.executable, "bench/training/zero_split.py", "--quick"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["settings"]["precision"] == resolve_precision("auto", use_gpu=False)
    figures = report["variants"]["N-N/8"]
    assert set(figures["cases_s"]) == {"plain_2cores", "plain_1core", "alone_zero0", "pair_zero0", "alone_zero2",
                                       "pair_zero2"}  # fmt: skip
    for name, phases in figures["cases_s"].items():
        assert set(phases) == {"forward", "backward", "step", "total"}, name
        assert all(v > 0 for v in phases.values()), (name, phases)
        assert math.isclose(phases["total"], phases["forward"] + phases["backward"] + phases["step"], abs_tol=2e-4)
    for stage in ("zero0", "zero2"):
        split = figures[stage]
        for part in ("deepspeed_s", "peer_s"):
            assert set(split[part]) == {"forward", "backward", "step", "total"}
            assert all(math.isfinite(v) for v in split[part].values())
        assert split["pair_vs_plain_2cores"] > 0
    assert figures["pair_zero0_vs_pair_zero2"] > 0
