"""The generator end to end on class-labelled image latents, on a real local Ray and a real SQLite MLflow:

labelled 32x32 shards -> a tokenizer run (N-N/8, c = 4, its export as `model/`) -> the real latent cache
(bfloat16) -> `workflows/train_generator.py --tokenizer-run` with 2 DDP workers streaming the latents, a
class-conditional DiT-N/1, classifier-free guidance and gFID from a small Inception-shaped TorchScript network.
Then the child run is read back: parent tag, both runs' params, per-step metrics, finite gen_swd and gen_fid,
the samples grid, the export and its train classes.
Running the same command again skips the finished run; bad input fails at once with one line (exit 2).
"""

from __future__ import annotations

import json
import math
import shutil
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.generation.conftest import cache, export_tokenizer, tokenizer_run
from tests.helpers import own_stderr_lines, run_cli
from vitok.generation import DiT, LatentStats
from workflows.tracking import PARENT_TAG, MlflowClient, fetch_artifacts, find_children, prepare_tracking
from workflows.train_generator import main

STEPS, SAMPLES = 6, 8
TOKENIZER_PARAMS = {"E": 64, "L": 16, "c": 4, "model.variant": "N-N/8", "params": 123456, "train.steps": 60}


@pytest.fixture(scope="module")
def prepared(labelled_shards, tmp_path_factory):
    """A tokenizer run and the real latent cache of its latents: what a sweep has when its tokenizer finished."""
    root = tmp_path_factory.mktemp("generator-images")
    uri, experiment_id = prepare_tracking(f"sqlite:///{root / 'mlflow.db'}", "generation-test")
    export = export_tokenizer(root / "tokenizer", "N-N/8")
    parent = tokenizer_run(uri, experiment_id, "n-n-8-c4", export, TOKENIZER_PARAMS)
    latents = cache(labelled_shards, export, root / "latents", "image")
    return {"root": root, "uri": uri, "experiment_id": experiment_id, "export": export, "parent": parent,
            "latents": latents, "shards": labelled_shards, "client": MlflowClient(uri)}  # fmt: skip


@pytest.fixture(scope="module")
def trained(prepared, feature_networks):
    root, parent = prepared["root"], prepared["parent"]
    (root / "generator.yaml").write_text(
        "generation:\n"
        f"  steps: {STEPS}\n  micro_batch_size: 8\n  num_workers: 2\n  threads_per_worker: 1\n  samples: {SAMPLES}\n"
        "  sampler: heun\n  sample_steps: 2\n  cfg_scale: 2.0\n  checkpoint_every: 3\n  log_every: 2\n"
        "  cache_max_bytes: 0\n"  # the train latents stream beside the workers, as a large cache's would
        f"  weights:\n    inception: {feature_networks['inception']}\n"
    )
    args = ["--latents", str(prepared["latents"]), "--tokenizer-run", parent, "--config", str(root / "generator.yaml"),
            "--tracking-uri", prepared["uri"], "--storage", str(root / "ray")]  # fmt: skip
    assert main(args) == 0
    runs = find_children(prepared["client"], prepared["experiment_id"], parent)
    assert list(runs) == ["generator"]
    return {**prepared, "run": runs["generator"], "args": args}


def test_the_generator_is_a_child_of_the_tokenizer_run_with_both_runs_params(trained):
    run = trained["run"]
    assert run.info.status == "FINISHED"
    assert run.data.tags[PARENT_TAG] == trained["parent"] and run.data.tags["role"] == "generator"
    params = run.data.params
    labels = json.loads((trained["shards"] / "manifest.json").read_text())["labels"]["names"]
    expected = {
        "E": "64", "L": "16", "c": "4", "p": "8", "q": "1", "latent_grid": "1x4x4", "input": "1x32x32",
        "tokenizer": "n-n-8-c4", "tokenizer.run_id": trained["parent"], "tokenizer.variant": "N-N/8",
        "tokenizer.params": "123456", "tokenizer.train.steps": "60", "tokenizer.E": "64",
        "generator": "DiT-N/1", "generation.model": "DiT-N/1", "generation.steps": str(STEPS),
        "generation.cfg_scale": "2.0", "cfg_applied": "2.0", "conditional": "True", "num_classes": str(len(labels)),
        "world_size": "2", "global_batch_size": "16", "latent_dtype": "bfloat16", "gfid": "on", "gfvd": "off",
    }  # fmt: skip
    assert {k: params.get(k) for k in expected} == expected
    assert int(params["dit_params"]) > 0 and int(params["train_latents"]) > 0


def test_every_logged_step_has_loss_lr_and_throughput_and_the_metrics_are_finite(trained):
    client, run_id = trained["client"], trained["run"].info.run_id
    for key in ("train_loss", "lr", "samples_per_s"):
        history = client.get_metric_history(run_id, key)
        assert sorted(m.step for m in history) == [2, 4, 6], key
        assert all(math.isfinite(m.value) and m.value > 0 for m in history), key
    metrics = trained["run"].data.metrics
    assert metrics["gen_samples"] == SAMPLES
    for key in ("gen_swd", "gen_swd_32", "gen_swd_16", "gen_fid"):
        assert math.isfinite(metrics[key]) and metrics[key] > 0, key
    assert metrics["gen_swd"] == pytest.approx((metrics["gen_swd_32"] + metrics["gen_swd_16"]) / 2)
    assert "gen_fvd" not in metrics  # images: no I3D metric, and none is ever made up


def test_the_samples_grid_and_the_export(trained, tmp_path):
    client, run = trained["client"], trained["run"]
    artifacts = fetch_artifacts(client, run.info.artifact_uri, tmp_path / "artifacts")
    grid = np.asarray(Image.open(artifacts / "samples" / "final.png"))
    # 8 samples of 32x32, enlarged 4x to 128 px cells with 4 px gaps, in one row.
    assert grid.shape == (4 + 128 + 4, 4 + SAMPLES * (128 + 4), 3)
    assert grid[4:132, 4:132].std() > 0  # a sample, not the white background

    model = artifacts / "model"
    dit = DiT.from_pretrained(model)
    description = json.loads((model / "generation.json").read_text())
    labels = json.loads((trained["shards"] / "manifest.json").read_text())["labels"]["names"]
    assert dit.config.name == "DiT-N/1" and dit.config.channels == 4 and dit.config.num_classes == len(labels)
    train_classes = set()
    manifest = json.loads((trained["latents"] / "manifest.json").read_text())
    for shard in manifest["shards"]:
        rows = pq.read_table(trained["latents"] / shard["path"], columns=["label", "split"]).to_pylist()
        train_classes |= {row["label"] for row in rows if row["split"] == "train"}
    assert description["classes"] == sorted(train_classes)  # what sampling cycles through
    assert description["cfg_scale"] == 2.0 and description["normalization"] == "channel"
    stats = LatentStats.load(model / "latent_stats.json")
    assert stats == LatentStats.load(trained["latents"] / "latent_stats.json")


def test_running_the_same_command_again_skips_the_finished_run(trained, capsys):
    assert main(trained["args"]) == 0
    assert "already finished" in capsys.readouterr().out
    runs = find_children(trained["client"], trained["experiment_id"], trained["parent"])
    assert [r.info.run_id for r in runs.values()] == [trained["run"].info.run_id]


# Bad input: exit code 2 and one line on stderr naming the input and the reason, before any run is created.

def fails(capsys, prepared, *overrides: str, config: str | None = None) -> str:
    """Runs the CLI with `overrides` replacing the default arguments; returns its one error line."""
    args = {"--latents": str(prepared["latents"]), "--tokenizer-run": prepared["parent"],
            "--tracking-uri": prepared["uri"]}
    pairs = dict(zip(overrides[::2], overrides[1::2]))
    if "--tokenizer" in pairs:
        del args["--tokenizer-run"]
    args.update(pairs)
    if config is not None:
        (prepared["root"] / "bad.yaml").write_text(config)
        args["--config"] = str(prepared["root"] / "bad.yaml")
    client, experiment = prepared["client"], prepared["experiment_id"]
    runs_before = len(client.search_runs([experiment]))
    code = main([part for pair in args.items() for part in pair])
    err = capsys.readouterr().err
    lines = own_stderr_lines(err)
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("train_generator: error: ")
    assert len(client.search_runs([experiment])) == runs_before
    return lines[0]


def test_latents_without_latent_stats(capsys, prepared, tmp_path):
    latents = tmp_path / "latents"
    shutil.copytree(prepared["latents"], latents)
    (latents / "latent_stats.json").unlink()
    line = fails(capsys, prepared, "--latents", str(latents))
    assert f"latents {latents}: no latent_stats.json, so the latents cannot be normalised" in line


def test_a_folder_that_is_no_latent_cache(capsys, prepared, tmp_path):
    line = fails(capsys, prepared, "--latents", str(tmp_path))
    assert f"latents {tmp_path}: no manifest.json (run workflows/cache_latents.py first)" in line


def test_a_dit_patch_that_does_not_tile_the_latent_grid(capsys, prepared):
    line = fails(capsys, prepared, config="generation:\n  model: DiT-N/3\n")
    assert "generation.model DiT-N/3: latent grid 1x4x4 does not tile into 1x3x3 patches" in line


def test_video_asked_of_an_image_cache(capsys, prepared):
    line = fails(capsys, prepared, config="media_type: video\n")
    assert "no video latents (it has image); set media_type" in line


def test_unknown_runs(capsys, prepared):
    line = fails(capsys, prepared, "--tokenizer-run", "0123456789abcdef0123456789abcdef")
    assert "tokenizer run 0123456789abcdef0123456789abcdef: no run with id" in line
    line = fails(capsys, prepared, "--tokenizer", str(prepared["export"]), "--parent-run", "nosuchrun")
    assert "parent run nosuchrun: no run with id nosuchrun" in line


def test_a_tokenizer_that_did_not_make_the_latents(capsys, prepared, tmp_path):
    other = export_tokenizer(tmp_path / "other", "N-N/16")
    line = fails(capsys, prepared, "--tokenizer", str(other))
    assert f"tokenizer {other}: not the tokenizer that made the latents in {prepared['latents']}" in line


def test_config_errors_name_the_file_and_key(capsys, prepared):
    line = fails(capsys, prepared, config="generation:\n  stepz: 3\n")
    assert "bad.yaml: generation: unknown key 'stepz'" in line
    line = fails(capsys, prepared, config="generation:\n  sampler: ddim\n")
    assert "bad.yaml: generation: sampler must be one of euler, heun" in line


def test_the_module_form_runs_and_fails_the_same_way(prepared):
    proc = run_cli(sys.executable, "-m", "workflows.train_generator", "--latents", str(prepared["root"] / "none"),
                   "--tokenizer-run", prepared["parent"], "--tracking-uri", prepared["uri"])  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"train_generator: error: latents {prepared['root'] / 'none'}: no manifest.json (run "
        "workflows/cache_latents.py first)"
    ], proc.stderr[-2000:]
