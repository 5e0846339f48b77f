"""Node loss: a 2-node Ray cluster on this machine (a head and a second node, separate `ray start`
processes on 127.0.0.1), one training worker on each, checkpoints in a storage path both nodes see. The
second node is killed mid-run; training resumes from the last checkpoint on the head, in the same MLflow
run, with every step logged once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import psutil
import pytest
import ray

from mlflow.tracking import MlflowClient

from tests.helpers import BIN, REPO, RayHead, kill_process_tree, registered_step, run_cli

pytestmark = pytest.mark.integration
STEPS = 24


def kill_node_after_checkpoint(node: subprocess.Popen, storage, record: dict, timeout: float = 600) -> None:
    """Once Ray Train has registered a checkpoint, SIGKILLs the second node: its raylet and its workers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and registered_step(storage) == 0:
        time.sleep(0.2)
    processes = [psutil.Process(node.pid), *psutil.Process(node.pid).children(recursive=True)]
    record["train_workers_on_node"] = sum(
        1 for p in processes if any("RayTrainWorker" in part for part in p.cmdline()))
    record["step_before_kill"] = registered_step(storage)
    kill_process_tree(node)


def alive_nodes(head: RayHead) -> int:
    """How many nodes `ray status` lists as active."""
    out = run_cli("ray", "status", "--address", head.gcs_address, env=head.env, timeout=60).stdout
    active = out.split("Active:", 1)[-1].split("Pending:", 1)[0]
    return sum(1 for line in active.splitlines() if "node_" in line)


@pytest.fixture
def two_nodes(tmp_path):
    ray.shutdown()  # an earlier module's local Ray: the driver of this test is a separate process
    head = RayHead(tmp_path, num_cpus=3)  # room for both workers once the second node is gone
    node = subprocess.Popen(
        [str(BIN / "ray"), "start", "--address", head.gcs_address, "--node-ip-address", "127.0.0.1",
         "--num-cpus", "1", "--disable-usage-stats", "--block"],
        env={**os.environ, **head.env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while alive_nodes(head) < 2:
            assert time.monotonic() < deadline, "the second node did not join"
            time.sleep(2)
        yield head, node
    finally:
        if node.poll() is None:
            kill_process_tree(node)
        head.stop()


def test_training_survives_the_loss_of_a_node(two_nodes, sample_shards, tmp_path):
    head, node = two_nodes
    sweep = tmp_path / "node-loss.yaml"
    sweep.write_text(
        "sweep: node-loss\nexperiment: node-loss-test\n"
        "base:\n  model: {variant: N-N/8, channels: 8}\n  data: {media_type: image}\n"
        "  optim: {base_lr: 0.064, warmup_steps: 2}\n"
        f"  train: {{steps: {STEPS}, micro_batch_size: 4, num_workers: 2, placement: SPREAD, log_every: 1,\n"
        "           checkpoint_every: 4, max_failures: 2, eval_samples: 8}\n"
        "runs:\n  - {name: node-loss}\n"
    )
    db, storage = tmp_path / "mlflow.db", tmp_path / "shared-storage"  # both nodes share this machine's disk
    record: dict = {}
    killer = threading.Thread(target=kill_node_after_checkpoint, args=(node, storage, record), daemon=True)
    killer.start()
    proc = run_cli(
        sys.executable, str(REPO / "workflows" / "train.py"), "--config", str(sweep), "--run", "node-loss",
        "--shards", str(sample_shards), "--tracking-uri", f"sqlite:///{db}", "--storage", str(storage),
        env={**head.env, "RAY_ADDRESS": head.gcs_address}, timeout=900,
    )
    killer.join(timeout=5)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    assert record.get("train_workers_on_node") == 1, record  # one worker really ran on the lost node
    assert 0 < record["step_before_kill"] < STEPS
    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("node-loss-test")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1  # one MLflow run for all attempts
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert int(run.data.tags["resumed_from_step"]) >= record["step_before_kill"]
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert steps == list(range(1, STEPS + 1))  # each step logged once: no gap, no repeat
    assert "eval_psnr" in run.data.metrics
