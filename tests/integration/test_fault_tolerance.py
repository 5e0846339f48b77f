"""A Ray Train worker killed mid-run is replaced; training resumes from the last checkpoint in the same
MLflow run, with every step logged exactly once and the same losses as an uninterrupted run; the exported
weights load and reconstruct. The same holds for the second of two runs trained in turn on one worker group,
whose first run is not trained again, and both log the losses of the same config trained alone."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from data_prep.reader import read_tubelets
from vitok import ViTok
from vitok.metrics import psnr
from tests.helpers import kill_a_worker_after_checkpoint
from workflows.config import TrainConfig
from workflows.training.evaluation import pixels_to_model_input
from workflows.tracking import MlflowClient, prepare_tracking
from workflows.training.spec import run_training, run_training_group
from workflows.training.plan import plan_run

pytestmark = pytest.mark.integration
EXACT_STEPS = 12


def _exact_config(name: str, shards, max_failures: int, ema: float = 0.0) -> TrainConfig:
    """Two workers, a seeded local shuffle, flips and the sampled bottleneck: every random stream is in use."""
    return TrainConfig.from_dict(
        {
            "name": name,
            "model": {"variant": "N-N/8", "channels": 8},
            "data": {"shards": str(shards), "shuffle_buffer": 4, "flip": True},
            "optim": {"base_lr": 0.064, "warmup_steps": 2},
            "train": {"steps": EXACT_STEPS, "micro_batch_size": 4, "num_workers": 2, "log_every": 1,
                      "checkpoint_every": 3, "max_failures": max_failures, "eval_samples": 8, "ema_decay": ema},
        }
    )


def test_resume_is_exact(sample_shards, local_ray, tmp_path):
    """A run of two workers (ZeRO-2) stopped after a checkpoint and resumed logs the same losses as an
    uninterrupted run: each rank's share of the data is replayed.

    Tolerance: relative 1e-6. The resumed workers restore the fp32 masters, the optimiser and schedule,
    the EMA, every random stream, and skip the batches the checkpoint had consumed; Ray Data hands the
    blocks to the workers in an order fixed by the blocks alone (preserve_order), so each rank sees the
    same batches in the same order on every attempt. With the same thread count and the same kernels, the
    steps after the resume recompute the same numbers, so any difference above float round-off means some
    state was not restored.
    """
    uri, experiment_id = prepare_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", "exact-test")
    client = MlflowClient(uri)
    reference = run_training(plan_run(_exact_config("reference", sample_shards, 0, ema=0.9)), uri,
                             experiment_id, storage=str(tmp_path / "ray"))

    storage = tmp_path / "ray-resumed"
    killed: list[int] = []
    killer = threading.Thread(target=kill_a_worker_after_checkpoint, args=(storage, killed), daemon=True)
    killer.start()
    resumed = run_training(plan_run(_exact_config("resumed", sample_shards, 1, ema=0.9)), uri,
                           experiment_id, storage=str(storage))
    killer.join(timeout=5)
    assert len(killed) == 2, "no Ray Train worker was found to kill"
    saved_before_kill = killed.pop()
    run = client.get_run(resumed.run_id)
    assert [r.info.run_id for r in client.search_runs([experiment_id], "tags.mlflow.runName = 'resumed'")] == [
        resumed.run_id]  # one MLflow run, not one per attempt
    assert run.info.status == "FINISHED" and 0 < saved_before_kill < EXACT_STEPS
    assert int(run.data.tags["resumed_from_step"]) >= saved_before_kill
    steps = [m.step for m in client.get_metric_history(resumed.run_id, "train_loss")]
    assert sorted(steps) == list(range(1, EXACT_STEPS + 1))  # no gap, no step twice, no restart from zero

    for key in ("train_loss", "train_kl", "lr"):
        ref = [m.value for m in sorted(client.get_metric_history(reference.run_id, key), key=lambda m: m.step)]
        got = [m.value for m in sorted(client.get_metric_history(resumed.run_id, key), key=lambda m: m.step)]
        assert len(ref) == len(got) == EXACT_STEPS
        np.testing.assert_allclose(got, ref, rtol=1e-6, err_msg=key)
    # the evaluated (EMA) weights match too
    assert client.get_run(resumed.run_id).data.metrics["eval_psnr"] == pytest.approx(
        client.get_run(reference.run_id).data.metrics["eval_psnr"], rel=1e-6)

    # Re-running the same name finds the finished run and does not train again.
    again = run_training(plan_run(_exact_config("resumed", sample_shards, 1, ema=0.9)), uri, experiment_id,
                         storage=str(storage))
    assert again.skipped and again.run_id == resumed.run_id
    # The export loads with from_pretrained and reconstructs held-out images better than a blank guess.
    model = ViTok.from_pretrained(resumed.export)
    val = read_tubelets(str(sample_shards), split="val").select_columns(["pixels"])
    x = pixels_to_model_input(next(iter(val.iter_torch_batches(batch_size=8)))["pixels"])
    with torch.no_grad():
        recon = model(x).recon.clamp(-1, 1)
    assert recon.shape == x.shape and torch.isfinite(recon).all()
    assert psnr(recon, x) > psnr(torch.zeros_like(x), x)
    assert {"model/model.safetensors", "model/config.json"} <= {a.path for a in client.list_artifacts(
        resumed.run_id, "model")}


def test_a_worker_group_trains_its_runs_as_alone_and_resumes_the_one_it_lost(sample_shards, local_ray, tmp_path):
    """Two runs of one config in turn on one worker group (a sweep's configs on a small cluster), a worker
    killed after the second run's first checkpoint: Ray Train replaces the group, which skips the first run
    (finished before the checkpoint) and resumes the second from it. Both log the losses of the config trained
    on a worker group of its own (relative 1e-6, as above): each run is seeded alike, starts its own epoch of
    the shared train split, and the second resumes exactly."""
    uri, experiment_id = prepare_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", "group-test")
    client = MlflowClient(uri)
    alone = run_training(plan_run(_exact_config("alone", sample_shards, 0)), uri, experiment_id,
                         storage=str(tmp_path / "ray"))  # fmt: skip

    def second_run_id() -> str | None:
        found = client.search_runs([experiment_id], "tags.mlflow.runName = 'second'")
        return found[0].info.run_id if found else None

    storage = tmp_path / "ray-group"
    killed: list[int] = []
    killer = threading.Thread(target=kill_a_worker_after_checkpoint, args=(storage, killed),
                              kwargs={"owner": second_run_id}, daemon=True)  # fmt: skip
    killer.start()
    plans = [plan_run(_exact_config(name, sample_shards, 1)) for name in ("first", "second")]
    group = run_training_group(plans, uri, experiment_id, storage=str(storage), name="pair")
    killer.join(timeout=5)
    assert group.error is None and len(killed) == 2, (group.error, killed)
    first, second = (client.get_run(result.run_id) for result in group.results)
    assert first.info.status == second.info.status == "FINISHED"
    assert first.data.tags["resumed_from_step"] == "0"  # trained once, before the kill
    assert 0 < int(second.data.tags["resumed_from_step"]) < EXACT_STEPS
    for run in (first, second):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
        assert sorted(steps) == list(range(1, EXACT_STEPS + 1))
        for key in ("train_loss", "train_kl", "lr"):
            ref = [m.value for m in sorted(client.get_metric_history(alone.run_id, key), key=lambda m: m.step)]
            got = [m.value for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)]
            np.testing.assert_allclose(got, ref, rtol=1e-6, err_msg=f"{run.info.run_name} {key}")
        assert run.data.metrics["eval_psnr"] == pytest.approx(alone.metrics["eval_psnr"], rel=1e-6)
    assert group.results[1].export and Path(group.results[1].export, "model.safetensors").is_file()
