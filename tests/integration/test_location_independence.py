"""The same corpus in two folders trains the same: data prep names its units and shards alike (relative paths,
not absolute URIs), the shards are read in the same order, and the same config and seed log the same losses."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from data_prep import run as prepare_shards
from workflows.config import TrainConfig
from workflows.tracking import MlflowClient, metric_history, prepare_tracking
from workflows.training.plan import plan_run
from workflows.training.spec import run_training

pytestmark = pytest.mark.integration
STEPS = 4


def _shard_names(shards) -> list[str]:
    return [entry["path"] for entry in json.loads((shards / "manifest.json").read_text())["shards"]]


def test_the_same_corpus_in_two_folders_gives_the_same_shards_and_losses(sample_corpus, local_ray, tmp_path):
    uri, experiment_id = prepare_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", "location-test")
    client = MlflowClient(uri)
    losses, names = {}, {}
    for where in ("here", "elsewhere/deeper"):
        folder = tmp_path / where
        folder.mkdir(parents=True)
        subprocess.run(["cp", "-a", str(sample_corpus), str(folder / "corpus")], check=True)  # times kept
        shards = folder / "shards"
        prepare_shards(str(folder / "corpus"), str(shards), size=32, include=("img/*",))
        names[where] = _shard_names(shards)
        config = TrainConfig.from_dict({
            "name": where.replace("/", "-"),
            "model": {"variant": "N-N/8", "channels": 8},
            "data": {"shards": str(shards), "shuffle_buffer": 8, "flip": True},
            "optim": {"base_lr": 0.064, "warmup_steps": 1},
            "train": {"steps": STEPS, "micro_batch_size": 4, "num_workers": 1, "log_every": 1, "eval_samples": 8},
        })  # fmt: skip
        result = run_training(plan_run(config), uri, experiment_id, storage=str(folder / "ray"))
        losses[where] = [value for _, value in metric_history(client, result.run_id, "train_loss")]
    assert names["here"] == names["elsewhere/deeper"] and len(names["here"]) > 1
    assert len(losses["here"]) == STEPS
    np.testing.assert_allclose(losses["elsewhere/deeper"], losses["here"], rtol=1e-6)
