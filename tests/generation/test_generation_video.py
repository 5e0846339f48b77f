"""The generator on video latents (T' = 2) with a worker killed mid-run, on a real local Ray and SQLite MLflow:

4-frame 32x32 video tubelets -> a tokenizer N-N/2x8 (c = 4) -> the real latent cache -> `train_generator.py
--tokenizer FOLDER --parent-run RUN` (unconditional: the shards have no labels) with an EMA of the weights, and
gFID and gFVD from small Inception- and I3D-shaped TorchScript networks. A Ray Train worker is SIGKILLed after
the first checkpoint: the worker group restarts (max_failures 1) and resumes from it in the same MLflow run,
every step logged once.
"""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from tests.generation.conftest import cache, export_tokenizer, tokenizer_run
from tests.helpers import kill_a_worker_after_checkpoint
from vitok.generation import DiT
from workflows.tracking import PARENT_TAG, MlflowClient, fetch_artifacts, find_children, prepare_tracking
from workflows.train_generator import main

STEPS, SAMPLES = 300, 6


@pytest.fixture(scope="module")
def trained(local_ray, sample_shards, feature_networks, tmp_path_factory):
    root = tmp_path_factory.mktemp("generator-video")
    uri, experiment_id = prepare_tracking(f"sqlite:///{root / 'mlflow.db'}", "generation-test")
    export = export_tokenizer(root / "tokenizer", "N-N/2x8")
    parent = tokenizer_run(uri, experiment_id, "n-n-2x8-c4", export, {"E": 128, "model.variant": "N-N/2x8"})
    latents = cache(sample_shards, export, root / "latents", "video")
    (root / "generator.yaml").write_text(
        f"name: video-generator\nmedia_type: video\nsteps: {STEPS}\nmicro_batch_size: 4\nnum_workers: 1\n"
        f"threads_per_worker: 1\nsamples: {SAMPLES}\nsampler: euler\nsample_steps: 2\ncheckpoint_every: 50\n"
        "log_every: 1\nmax_failures: 1\nema_decay: 0.9\n"
        f"weights:\n  inception: {feature_networks['inception']}\n  i3d: {feature_networks['i3d']}\n"
    )
    storage = root / "ray"
    killed: list[int] = []
    killer = threading.Thread(target=kill_a_worker_after_checkpoint, args=(storage, killed), daemon=True)
    killer.start()
    code = main(["--latents", str(latents), "--tokenizer", str(export), "--parent-run", parent,
                 "--config", str(root / "generator.yaml"), "--tracking-uri", uri, "--storage", str(storage)])
    killer.join(timeout=5)
    assert code == 0
    assert len(killed) == 2, "no Ray Train worker was found to kill"
    client = MlflowClient(uri)
    runs = find_children(client, experiment_id, parent)
    assert list(runs) == ["video-generator"]  # one run, not one per attempt
    return {"client": client, "run": runs["video-generator"], "parent": parent, "export": export,
            "saved_before_kill": killed[1]}  # fmt: skip


def test_video_latents_train_an_unconditional_dit_under_the_tokenizer_run(trained):
    run = trained["run"]
    assert run.info.status == "FINISHED" and run.data.tags[PARENT_TAG] == trained["parent"]
    params = run.data.params
    expected = {"latent_grid": "2x4x4", "input": "4x32x32", "E": "128", "L": "32", "c": "4", "q": "2", "p": "8",
                "conditional": "False", "num_classes": "0", "generation.cfg_scale": "1.5", "cfg_applied": "1.0",
                "tokenizer": str(trained["export"]), "tokenizer.variant": "N-N/2x8", "gfid": "on", "gfvd": "on"}
    assert {k: params.get(k) for k in expected} == expected
    metrics = run.data.metrics
    for key in ("gen_swd", "gen_swd_32", "gen_swd_16", "gen_fid", "gen_fvd"):
        assert math.isfinite(metrics[key]) and metrics[key] > 0, key
    assert metrics["gen_samples"] == SAMPLES


def test_a_killed_worker_resumes_from_its_checkpoint_in_the_same_run(trained):
    client, run = trained["client"], trained["run"]
    saved = trained["saved_before_kill"]
    assert 0 < saved < STEPS, "the kill came too late: training had finished"
    assert saved <= int(run.data.tags["resumed_from_step"]) < STEPS
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert sorted(steps) == list(range(1, STEPS + 1))  # no gap, no step twice, no restart from zero


def test_the_video_samples_grid_and_the_export(trained, tmp_path):
    artifacts = fetch_artifacts(trained["client"], trained["run"].info.artifact_uri, tmp_path / "artifacts")
    grid = np.asarray(Image.open(artifacts / "samples" / "final.png"))
    # 6 clips of 4 frames, 32 px enlarged to 128: 512 px strips, two per 1100 px row, three rows.
    assert grid.shape == (4 + 3 * (128 + 4), 4 + 2 * (512 + 4), 3)
    assert trained["run"].data.tags["eval_weights"] == "ema"  # sampled and exported: the EMA of the weights
    assert json.loads((artifacts / "model" / "generation.json").read_text())["weights"] == "ema"
    dit = DiT.from_pretrained(artifacts / "model")
    assert dit.config.num_classes == 0 and dit.config.channels == 4
    with torch.no_grad():
        velocity = dit(torch.randn(2, 2, 4, 4, 4), torch.rand(2))
    assert velocity.shape == (2, 2, 4, 4, 4) and torch.isfinite(velocity).all()
