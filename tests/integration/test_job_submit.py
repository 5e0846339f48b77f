"""`ray job submit` of a tiny sweep against a real local Ray cluster started by the test on 127.0.0.1."""

from __future__ import annotations

import time
import uuid

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import REPO, RayHead, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def ray_cluster(tmp_path):
    """A head node with token auth on loopback; yields (dashboard address, env for the ray CLI)."""
    head = RayHead(tmp_path, num_cpus=4)
    try:
        yield head.dashboard, head.env
    finally:
        head.stop()


def test_job_submit_runs_a_sweep(ray_cluster, sample_shards, tmp_path):
    address, env = ray_cluster
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text(
        "sweep: tiny-job\nexperiment: job-test\n"
        "base:\n  model: {variant: N-N/8}\n  data: {media_type: image}\n"
        "  optim: {warmup_steps: 1}\n  train: {steps: 3, micro_batch_size: 4, log_every: 1, eval_samples: 8}\n"
        "runs:\n  - {name: c16, model: {channels: 16}}\n"
    )
    db = tmp_path / "mlflow.db"
    job_id = f"vitok-test-{uuid.uuid4().hex[:8]}"
    submit = [
        "ray", "job", "submit", "--address", address, "--submission-id", job_id, "--working-dir", str(REPO),
        "--no-wait", "--", "python", "workflows/scale_sweep.py", "--config", str(sweep),
        "--shards", str(sample_shards), "--tracking-uri", f"sqlite:///{db}",
        "--storage", str(tmp_path / "ray_results"),
    ]
    deadline = time.monotonic() + 120
    while True:  # the head's job agent comes up a little after `ray start` returns
        proc = run_cli(*submit, env=env, timeout=300)
        if proc.returncode == 0 or "No available agent" not in proc.stderr or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    deadline, status = time.monotonic() + 600, ""
    while time.monotonic() < deadline:
        status = run_cli("ray", "job", "status", "--address", address, job_id, env=env).stdout.lower()
        if any(s in status for s in ("succeeded", "failed", "stopped")):
            break
        time.sleep(5)
    logs = run_cli("ray", "job", "logs", "--address", address, job_id, env=env).stdout
    assert "succeeded" in status, f"{status}\n{logs[-4000:]}"
    assert "| c16" in logs  # the summary table was printed

    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("job-test")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(parents) == 1 and len(children) == 1
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    for child in children:
        assert child.info.status == "FINISHED"
        assert {"E", "L", "c", "p", "gmacs", "params"} <= set(child.data.params)
        assert {"eval_psnr", "eval_ssim", "train_loss"} <= set(child.data.metrics)
        artifacts = [a.path for a in client.list_artifacts(child.info.run_id, "reconstructions")]
        assert "reconstructions/final.png" in artifacts
