"""DeepSpeed ZeRO under Ray Train with 2 CPU workers (gloo): the loss falls on a fixed tiny batch.

Every run here asks for bf16 (the dtypes of a GPU run), whatever "auto" would pick on this CPU."""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import run_cli
from workflows.config import TrainConfig
from workflows.tracking import MlflowClient, prepare_tracking
from workflows.training.spec import run_training
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


@pytest.mark.parametrize("stage", [1, 3])  # ZeRO-2, the default for 2 workers: the stage-1 export below
def test_zero_stage_loss_falls(stage, fixed_batch_shards, local_ray, tmp_path):
    config = TrainConfig.from_dict(
        {
            "name": f"zero{stage}",
            "model": {"variant": "N-N/8", "channels": 16},
            "data": {"shards": str(fixed_batch_shards), "shuffle_buffer": 0},
            "optim": {"base_lr": 0.064, "warmup_steps": 2},  # peak lr 2e-3 at global batch 8
            "train": {"steps": 20, "micro_batch_size": 4, "num_workers": 2, "zero_stage": stage,
                      "precision": "bf16", "log_every": 1, "eval_samples": 8},
        }
    )
    uri, experiment_id = prepare_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", "zero-test")
    result = run_training(plan_run(config), uri, experiment_id, storage=str(tmp_path / "ray"))

    history = [m.value for m in MlflowClient(uri).get_metric_history(result.run_id, "train_mse")]
    assert len(history) == 20
    assert sum(history[-3:]) / 3 < 0.6 * history[0], history
    assert MlflowClient(uri).get_run(result.run_id).data.params["zero_stage"] == str(stage)


def test_one_worker_at_zero0_trains_in_bf16_and_exports_the_fp32_masters(fixed_batch_shards, local_ray, tmp_path):
    """ZeRO-0, the stage for one worker (nothing to partition): DeepSpeed's bf16 optimiser keeps fp32 masters
    beside the bf16 module, and the raw export (beside the EMA one) holds those masters, not the bf16 copies:
    its weights carry mantissa bits that bf16 cannot hold."""
    from vitok.checkpoint import load_checkpoint
    from workflows.training.worker import RAW_EXPORT_DIR

    config = TrainConfig.from_dict(
        {
            "name": "zero0-1w",
            "model": {"variant": "N-N/8", "channels": 16},
            "data": {"shards": str(fixed_batch_shards), "shuffle_buffer": 0},
            "optim": {"base_lr": 0.064, "warmup_steps": 2},
            "train": {"steps": 20, "micro_batch_size": 8, "num_workers": 1, "zero_stage": 0, "precision": "bf16",
                      "log_every": 1, "eval_samples": 8, "ema_decay": 0.9, "export_to": str(tmp_path / "export")},
        }
    )
    uri, experiment_id = prepare_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", "zero-test")
    result = run_training(plan_run(config), uri, experiment_id, storage=str(tmp_path / "ray"))

    history = [m.value for m in MlflowClient(uri).get_metric_history(result.run_id, "train_mse")]
    assert len(history) == 20
    assert sum(history[-3:]) / 3 < 0.6 * history[0], history
    _, raw = load_checkpoint(Path(result.export) / RAW_EXPORT_DIR)
    trained = [w for k, w in raw.items() if k.startswith("decoder.") and w.dtype == torch.float32 and w.ndim == 2]
    assert trained and all((w != w.bfloat16().float()).any() for w in trained)
    _loads_as_fp32_and_reconstructs(result.export)


COMMON = {"model": {"variant": "N-N/8", "channels": 8}, "optim": {"base_lr": 0.064, "warmup_steps": 1}}
STAGE_TRAIN = {"steps": 6, "micro_batch_size": 4, "num_workers": 2, "precision": "bf16", "log_every": 1,
               "checkpoint_every": 3}


@pytest.fixture(scope="module")
def stage1_export(fixed_batch_shards, local_ray, tmp_path_factory):
    """A stage-1 run in bf16 at ZeRO-2 (auto for 2 workers), exported as safetensors + config.json; on the fixed
    batch its loss falls as at the other stages (test_zero_stage_loss_falls)."""
    folder = tmp_path_factory.mktemp("stage1")
    uri, experiment_id = prepare_tracking(f"sqlite:///{folder / 'mlflow.db'}", "stage-test")
    stage1 = TrainConfig.from_dict({**COMMON, "name": "s1", "data": {"shards": str(fixed_batch_shards),
                                                                    "shuffle_buffer": 0},
                                    "train": {**STAGE_TRAIN, "steps": 20, "export_to": str(folder / "s1")}})
    result = run_training(plan_run(stage1), uri, experiment_id, storage=str(folder / "ray"))
    run = MlflowClient(uri).get_run(result.run_id)
    assert (run.data.params["train.precision"], run.data.params["zero_stage"]) == ("bf16", "2")
    history = [m.value for m in MlflowClient(uri).get_metric_history(result.run_id, "train_mse")]
    assert len(history) == 20 and sum(history[-3:]) / 3 < 0.6 * history[0], history
    return folder / "s1"


def _loads_as_fp32_and_reconstructs(export) -> None:
    from vitok import ViTok

    model = ViTok.from_pretrained(export)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    x = torch.rand(2, 1, 32, 32, 3) * 2 - 1  # fp32 input, no autocast
    with torch.no_grad():
        out = model(x)
    assert out.recon.dtype == torch.float32 and out.recon.shape == x.shape and torch.isfinite(out.recon).all()


@pytest.mark.parametrize("zero_stage", [2])  # ZeRO-3's partitioned weights train in test_zero_stage_loss_falls
def test_stage2_gan_freezes_the_encoder_and_exports_fp32(zero_stage, stage1_export, fixed_batch_shards, local_ray,
                                                         tmp_path):
    """Stage 2 starts from the fp32 stage-1 export with the GAN (bf16 engine, fp32 discriminator) and leaves
    every encoder weight bit-identical; both exports are fp32 and reconstruct fp32 input."""
    from safetensors import safe_open

    from vitok.checkpoint import load_checkpoint

    _loads_as_fp32_and_reconstructs(stage1_export)
    with safe_open(str(stage1_export / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float32}  # from the fp32 master weights
    uri, experiment_id = prepare_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", "stage-test")
    stage2 = TrainConfig.from_dict(
        {
            **COMMON,
            "name": f"s2-zero{zero_stage}",
            "data": {"shards": str(fixed_batch_shards)},
            "optim": {**COMMON["optim"], "gan_weight": 0.05, "gan_warmup_steps": 2, "disc_r1_weight": 0.1},
            "train": {**STAGE_TRAIN, "stage": 2, "init_from": str(stage1_export), "zero_stage": zero_stage},
        }
    )
    result = run_training(plan_run(stage2), uri, experiment_id, storage=str(tmp_path / "ray"))

    _, before = load_checkpoint(stage1_export)
    _, after = load_checkpoint(result.export)
    encoder = [k for k in before if k.startswith("encoder.")]
    decoder = [k for k in before if k.startswith("decoder.")]
    assert encoder and decoder
    assert all(torch.equal(before[k], after[k]) for k in encoder)
    assert any(not torch.equal(before[k], after[k]) for k in decoder)
    _loads_as_fp32_and_reconstructs(result.export)
    client = MlflowClient(uri)
    history = client.get_metric_history(result.run_id, "train_gan_g")
    assert len(history) == 6 and all(math.isfinite(m.value) for m in history)
    metrics = client.get_run(result.run_id).data.metrics
    assert metrics["train_d_loss"] > 0 and metrics["train_r1"] >= 0
