"""DeepSpeed ZeRO under Ray Train with 2 CPU workers (gloo): the loss falls on a fixed tiny batch."""

from __future__ import annotations

import math
import shutil
import sys

import pytest
import torch

from tests.helpers import run_cli
from workflows.config import TrainConfig
from workflows.tracking import MlflowClient, prepare_tracking
from workflows.training.driver import run_training
from workflows.training.plan import plan_run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fixed_batch_shards(tmp_path_factory, sample_corpus):
    """Eight photographs, all in the train split: with 2 workers x micro-batch 4, one fixed global batch."""
    corpus = tmp_path_factory.mktemp("eight")
    for path in sorted(p for p in sample_corpus.rglob("*.jpg"))[:8]:
        shutil.copy(path, corpus / path.name)
    out = tmp_path_factory.mktemp("eight_shards") / "shards"
    proc = run_cli(
        sys.executable, "-m", "data_prep", "run", "--input", str(corpus), "--output", str(out),
        "--size", "32", "--val-fraction", "0",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_zero_stage_loss_falls(stage, fixed_batch_shards, local_ray, tmp_path):
    config = TrainConfig.from_dict(
        {
            "name": f"zero{stage}",
            "model": {"variant": "N-N/8", "channels": 16},
            "data": {"shards": str(fixed_batch_shards), "shuffle_buffer": 0},
            "optim": {"base_lr": 0.064, "warmup_steps": 2},  # peak lr 2e-3 at global batch 8
            "train": {"steps": 20, "micro_batch_size": 4, "num_workers": 2, "zero_stage": stage,
                      "log_every": 1, "eval_samples": 8},
        }
    )
    uri, experiment_id = prepare_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", "zero-test")
    result = run_training(plan_run(config), uri, experiment_id, storage=str(tmp_path / "ray"))

    history = [m.value for m in MlflowClient(uri).get_metric_history(result.run_id, "train_mse")]
    assert len(history) == 20
    assert sum(history[-3:]) / 3 < 0.6 * history[0], history
    assert MlflowClient(uri).get_run(result.run_id).data.params["zero_stage"] == str(stage)


def test_stage2_freezes_the_encoder(fixed_batch_shards, local_ray, tmp_path):
    """Stage 1 exports; stage 2 starts from it with a GAN and leaves every encoder weight bit-identical."""
    from vitok.checkpoint import load_checkpoint

    common = {
        "model": {"variant": "N-N/8", "channels": 8},
        "data": {"shards": str(fixed_batch_shards), "shuffle_buffer": 0},
        "optim": {"base_lr": 0.064, "warmup_steps": 1},
    }
    train = {"steps": 6, "micro_batch_size": 4, "num_workers": 2, "log_every": 1, "checkpoint_every": 3}
    uri, experiment_id = prepare_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", "stage-test")
    stage1 = TrainConfig.from_dict({**common, "name": "s1", "train": {**train, "export_to": str(tmp_path / "s1")}})
    run_training(plan_run(stage1), uri, experiment_id, storage=str(tmp_path / "ray"))

    stage2 = TrainConfig.from_dict(
        {
            **common,
            "name": "s2",
            "optim": {**common["optim"], "gan_weight": 0.05, "gan_warmup_steps": 2},
            "train": {**train, "stage": 2, "init_from": str(tmp_path / "s1"), "zero_stage": 3},
        }
    )
    result = run_training(plan_run(stage2), uri, experiment_id, storage=str(tmp_path / "ray"))

    _, before = load_checkpoint(tmp_path / "s1")
    _, after = load_checkpoint(result.export)
    encoder = [k for k in before if k.startswith("encoder.")]
    decoder = [k for k in before if k.startswith("decoder.")]
    assert encoder and decoder
    assert all(torch.equal(before[k], after[k]) for k in encoder)
    assert any(not torch.equal(before[k], after[k]) for k in decoder)
    history = MlflowClient(uri).get_metric_history(result.run_id, "train_gan_g")
    assert len(history) == 6 and all(math.isfinite(m.value) for m in history)
    assert MlflowClient(uri).get_run(result.run_id).data.metrics["train_d_loss"] > 0
