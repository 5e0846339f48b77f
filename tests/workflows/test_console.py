"""The quiet console: the native-output line filter, and the demo's short form of the plan and findings."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys

from data_prep.console import NATIVE_NOISE, FdLineFilter
from workflows.sweeps.command import finding_lines, local_path, plan_text

# Commands import MLflow and Ray Data after their checks, so after `configure_console`; both set their loggers'
# levels when imported. A fresh interpreter, so that neither is imported yet.
LEVELS_AFTER_LATE_IMPORTS = """
import logging
from data_prep.console import configure_console
configure_console(False)
import mlflow, ray.data
print(logging.getLogger("mlflow").getEffectiveLevel(), logging.getLogger("ray.data").getEffectiveLevel())
"""


def test_quiet_console_survives_importing_mlflow_and_ray_data_afterwards():
    env = {key: value for key, value in os.environ.items() if key not in ("MLFLOW_LOGGING_LEVEL", "RAY_DATA_LOG_LEVEL")}
    done = subprocess.run([sys.executable, "-c", LEVELS_AFTER_LATE_IMPORTS], env=env, capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert done.stdout.split() == [str(logging.WARNING)] * 2


def test_line_filter_drops_only_matching_lines_and_keeps_the_rest_in_order(tmp_path):
    target = tmp_path / "console.txt"
    with open(target, "wb") as out:
        line_filter = FdLineFilter(out.fileno(), re.compile("noise"))
        os.write(out.fileno(), b"first\nsome noise here\nsecond\n")
        os.write(out.fileno(), b"last, without a newline")
        line_filter.close()
        os.write(out.fileno(), b"\nafter close: unfiltered noise\n")  # the fd points at the file again
    assert target.read_bytes() == b"first\nsecond\nlast, without a newline\nafter close: unfiltered noise\n"


def test_native_noise_matches_rays_two_lines_and_nothing_of_ours():
    assert NATIVE_NOISE.search("[2026-12-03 10:01:16,156 E 10319 10319] core_worker.cc:2465: Actor with class name: "
                               "'MapWorker(MapBatches(_UnitWorker))' and ID: 'c2' has constructor arguments in the "
                               "object store and max_restarts > 0.")  # fmt: skip
    assert NATIVE_NOISE.search("(raylet) WARNING: 8 PYTHON worker processes have been started on node: fb8c")
    for ours in ("[T-T-8_c16] step 200/400  loss 0.0376  486 samples/s  ETA 7s", "finding e_sweep: holds",
                 "Traceback (most recent call last):"):
        assert not NATIVE_NOISE.search(ours)


FINDINGS = """# Findings: sweep `s` (study `e_sweep`)

10 of 10 configs finished and are used below.

## Runs

| config | E |

## e_reconstruction: inconclusive

- Paper: ...

## e_patch_size: does not hold
"""


def test_one_console_line_per_finding():
    assert finding_lines(FINDINGS) == ["finding e_reconstruction: inconclusive", "finding e_patch_size: does not hold"]
    assert len(finding_lines("# Findings\n\nThis sweep covers none of the paper's findings.")) == 1


def test_plan_without_its_table_unless_full():
    plan = "Sweep 's': 2 configs\n| config |\n|---|\n| a |\nEstimated total training compute: 1 FLOPs\n"
    assert plan_text(plan, full=False) == "Sweep 's': 2 configs\nEstimated total training compute: 1 FLOPs"
    assert plan_text(plan, full=True) == plan


def test_local_path_of_a_file_uri():
    assert local_path("file:///w/mlartifacts/1/r/artifacts/findings.md") == "/w/mlartifacts/1/r/artifacts/findings.md"
    assert local_path("s3://b/findings.md") == "s3://b/findings.md"
