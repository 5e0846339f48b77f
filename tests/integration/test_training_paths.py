"""Training paths no other test reaches: video tubelets (q > 1) with gradient accumulation in bf16, the
learning-rate rule at a global batch other than 256, and the speed options against the plain path."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workflows.config import TrainConfig
from workflows.tracking import MlflowClient, prepare_tracking
from workflows.training.spec import run_training
from workflows.training.plan import plan_run

pytestmark = pytest.mark.integration


def _history(client: MlflowClient, run_id: str, key: str) -> list[float]:
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_video_tubelets_with_grad_accum_in_bf16(sample_shards, local_ray, tmp_path):
    config = TrainConfig.from_dict(
        {
            "name": "video-q2",
            "model": {"variant": "N-N/2x8", "channels": 8},
            "data": {"shards": str(sample_shards), "media_type": "video"},
            "optim": {"base_lr": 0.032, "warmup_steps": 2},
            "train": {"steps": 6, "micro_batch_size": 2, "grad_accum": 2, "num_workers": 2, "precision": "bf16",
                      "log_every": 1, "eval_samples": 8},
        }
    )
    plan = plan_run(config)
    assert (plan.frames, plan.stats.tubelet) == (4, 2) and config.train.precision == "bf16"
    uri, experiment_id = prepare_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", "paths-test")
    result = run_training(plan, uri, experiment_id, storage=str(tmp_path / "ray"))
    client = MlflowClient(uri)
    run = client.get_run(result.run_id)
    # peak lr = base_lr x global batch / 256, global batch = 2 x 2 accumulation x 2 workers = 8
    peak = 0.032 * 8 / 256
    assert float(run.data.params["peak_lr"]) == pytest.approx(peak)
    assert max(_history(client, result.run_id, "lr")) == pytest.approx(peak)
    losses = _history(client, result.run_id, "train_loss")
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses)
    assert run.data.metrics["eval_samples"] >= 1 and math.isfinite(run.data.metrics["eval_psnr"])
    assert run.data.params["rfvd"] == "off"
    phases = {k: v for k, v in run.data.metrics.items() if k.startswith("phase_")}
    assert set(phases) == {f"phase_{p}_s" for p in ("start", "setup", "steps", "checkpoints", "finish", "shutdown")}
    assert all(v >= 0 for v in phases.values()), phases
    assert all(phases[f"phase_{p}_s"] > 0 for p in ("setup", "steps", "finish")), phases
    # the phases add up to the time from building the run to the driver's last look at it, a little past the fit
    assert result.wall_time_s <= sum(phases.values()) < result.wall_time_s + 10, (phases, result.wall_time_s)


def _speed_config(name: str, shards, **train) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "name": name,
            "model": {"variant": "N-N/8", "channels": 8},
            "data": {"shards": str(shards), "shuffle_buffer": 0},
            "optim": {"base_lr": 0.064, "warmup_steps": 1},
            "train": {"steps": 4, "micro_batch_size": 4, "num_workers": 1, "precision": "bf16", "log_every": 1,
                      "eval_samples": 4, **train},
        }
    )


def test_speed_options_match_the_plain_path(sample_shards, local_ray, tmp_path):
    """Activation checkpointing recomputes the same numbers (exact); torch.compile fuses bf16 kernels, which
    rounds differently, so its losses agree within 5% over four steps."""
    uri, experiment_id = prepare_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", "speed-test")
    client = MlflowClient(uri)
    losses = {}
    for name, options in (("plain", {}), ("checkpointed", {"activation_checkpointing": True}),
                          ("compiled", {"compile": True})):
        result = run_training(plan_run(_speed_config(name, sample_shards, **options)), uri, experiment_id,
                              storage=str(tmp_path / "ray"))
        losses[name] = _history(client, result.run_id, "train_loss")
    assert len(losses["plain"]) == 4
    np.testing.assert_allclose(losses["checkpointed"], losses["plain"], rtol=1e-6)
    np.testing.assert_allclose(losses["compiled"], losses["plain"], rtol=0.05)
