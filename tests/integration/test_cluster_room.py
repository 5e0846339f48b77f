"""A cluster sized to its training workers (`ray start --head --num-cpus 2`, 2 workers): the run either
finishes or stops at once with one line saying what is missing; it never waits forever for a CPU."""

from __future__ import annotations

import sys
import time

import pytest

from tests.helpers import REPO, RayHead, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_cpu_head(tmp_path_factory):
    head = RayHead(tmp_path_factory.mktemp("head"), num_cpus=2)
    try:
        yield head
    finally:
        head.stop()


def _train(head: RayHead, shards, tmp_path, data: str, timeout: float):
    sweep = tmp_path / "room.yaml"
    sweep.write_text(
        "sweep: room\nexperiment: room-test\n"
        f"base:\n  model: {{variant: N-N/8, channels: 4}}\n  data: {{media_type: image{data}}}\n"
        "  optim: {warmup_steps: 1}\n"
        "  train: {steps: 4, micro_batch_size: 4, num_workers: 2, log_every: 1, eval_samples: 8}\n"
        "runs:\n  - {name: fits}\n"
    )
    start = time.monotonic()
    proc = run_cli(
        sys.executable, str(REPO / "workflows" / "train.py"), "--config", str(sweep), "--run", "fits",
        "--shards", str(shards), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
        "--storage", str(tmp_path / "ray"), env={**head.env, "RAY_ADDRESS": head.gcs_address}, timeout=timeout,
    )
    return proc, time.monotonic() - start


def test_a_run_that_fits_the_workers_cpus_finishes(two_cpu_head, sample_shards, tmp_path):
    # the train split is cached and the validation rows are read by the driver, before the workers start
    proc, _ = _train(two_cpu_head, sample_shards, tmp_path, "", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '"eval_psnr"' in proc.stdout


def test_a_run_that_needs_a_cpu_for_data_stops_at_once_with_one_line(two_cpu_head, sample_shards, tmp_path):
    # a streaming train split (nothing cached) needs a CPU for Ray Data beside the 2 workers: 3 > 2
    proc, seconds = _train(two_cpu_head, sample_shards, tmp_path, ", cache_max_bytes: 0", timeout=120)
    assert proc.returncode == 2 and seconds < 60, proc.stdout[-2000:] + proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "needs 3 CPU (2 training workers + 1 for Ray Data's read tasks) but the cluster has 2" in errors[0]
    assert "--num-cpus 3" in errors[0]
