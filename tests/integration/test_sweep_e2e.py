"""End-to-end scaling sweeps through the CLI (`workflows/scale_sweep.py` in a subprocess, its own local Ray):

- against a real `mlflow server` (SQLite backend, 127.0.0.1): through the REST API, the parent run has every
  child, the children share one set of param keys, and the parent holds the table, the plots and findings.md;
- killed mid-way (SIGKILL to its process group) and re-run: the finished child is not retrained (same run,
  skipped), and the parent ends FINISHED with all children.

Tiny configs (N-N/8 on the 32x32 test shards, a few steps) keep each child at Ray/DeepSpeed start-up cost.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.helpers import (REPO, SWEEP_SCRIPT, actor_classes_started, kill_ray_processes,
                           mlflow_server as mlflow_server_at, run_sweep, sweep_env)

pytestmark = pytest.mark.integration



def write_sweep(path: Path, shards: Path, name: str, channels: list[int], steps: int = 5) -> Path:
    path.write_text(yaml.safe_dump({
        "sweep": name,
        "experiment": "sweep-it",
        "study": "e_sweep",
        "input": {"frames": 1, "size": 32},
        "base": {
            "model": {"variant": "N-N/8"},
            "data": {"shards": str(shards), "media_type": "image", "shuffle_buffer": 0},
            "optim": {"base_lr": 0.064, "warmup_steps": 1},
            "train": {"steps": steps, "micro_batch_size": 4, "num_workers": 2, "zero_stage": 2,
                      "log_every": 5, "eval_samples": 8, "checkpoint_every": 5},
        },
        "axes": {"grid": {"model.channels": channels}},
    }))
    return path


# ------------------------------------------------------------------------------------ MLflow server, REST


@pytest.fixture
def mlflow_server(tmp_path):
    with mlflow_server_at(tmp_path) as url:
        yield url


def rest(url: str, endpoint: str, body: dict | None = None, **query) -> dict:
    full = f"{url}/api/2.0/mlflow/{endpoint}"
    if query:
        full += "?" + urllib.parse.urlencode(query)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(full, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def search(url: str, experiment_id: str, filter_string: str) -> list[dict]:
    return rest(url, "runs/search", {"experiment_ids": [experiment_id], "filter": filter_string}).get("runs", [])


def artifact_paths(url: str, run_id: str, path: str = "") -> set[str]:
    files = rest(url, "artifacts/list", run_id=run_id, **({"path": path} if path else {})).get("files", [])
    return {f["path"] for f in files}


def test_sweep_against_mlflow_server(mlflow_server, sample_shards, tmp_path, ray_tmp):
    config = write_sweep(tmp_path / "sweep.yaml", sample_shards, "it-server", [4, 16])
    proc = run_sweep(config, mlflow_server, tmp_path / "ray", ray_tmp, "--max-concurrent", "1")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    assert "finding e_reconstruction:" in proc.stdout  # each finding's verdict is printed at the end
    # Quiet by default: no library's INFO line (MLflow's store and system metrics, Ray Data's executor) reaches
    # the console; our own lines carry no level.
    assert not [line for line in (proc.stdout + proc.stderr).splitlines() if re.search(r"\bINFO\b", line)]
    # The local Ray the sweep started ran Ray Train without its preemption watcher (data_prep.ray_session), and
    # one config at a time (as on a 2-core machine whatever the option): both configs trained in turn on one
    # worker group, started once, with one split coordinator for the train split they share.
    started = actor_classes_started(ray_tmp)
    assert "PreemptionWatcher" not in started, started
    assert (started["TrainController"], started["RayTrainWorker"], started["SplitCoordinator"]) == (1, 2, 1), started
    assert "2 config(s) in turn on one worker group" in proc.stdout

    experiment_id = rest(mlflow_server, "experiments/get-by-name", experiment_name="sweep-it")["experiment"]["experiment_id"]
    (parent,) = search(mlflow_server, experiment_id, "tags.sweep = 'it-server' and tags.role = 'sweep'")
    parent_id = parent["info"]["run_id"]
    assert parent["info"]["status"] == "FINISHED"
    parent_tags = {t["key"]: t["value"] for t in parent["data"]["tags"]}
    assert parent_tags["study"] == "e_sweep" and parent_tags["git_commit"] not in ("", None)
    assert "finding.e_reconstruction" in parent_tags

    children = search(mlflow_server, experiment_id, f"tags.`mlflow.parentRunId` = '{parent_id}'")
    assert sorted(c["info"]["run_name"] for c in children) == ["c16", "c4"]
    assert all(c["info"]["status"] == "FINISHED" for c in children)
    keys = [frozenset(p["key"] for p in c["data"]["params"]) for c in children]
    assert len(set(keys)) == 1 and {"E", "model.channels", "gmacs", "params"} <= keys[0]
    for child in children:
        tags = {t["key"]: t["value"] for t in child["data"]["tags"]}
        assert (tags["sweep"], tags["study"], tags["role"]) == ("it-server", "e_sweep", "config")
        assert "git_commit" in tags
        child_metrics = {m["key"]: m["value"] for m in child["data"]["metrics"]}
        assert "eval_psnr" in child_metrics and 1 <= child_metrics["eval_groups"] <= child_metrics["eval_samples"]
        # the per-sample values the report's paired bootstrap resamples
        assert "eval/per_sample.json" in artifact_paths(mlflow_server, child["info"]["run_id"], "eval")

    top = artifact_paths(mlflow_server, parent_id)
    assert {"summary.csv", "summary.md", "findings.md", "plots"} <= top, top
    assert "plots/metrics_vs_E.png" in artifact_paths(mlflow_server, parent_id, "plots")
    metrics = {m["key"] for m in parent["data"].get("metrics", [])}
    assert "fit_PSNR_vs_log2_E_slope" in metrics
    assert "fit_PSNR_vs_log2_E_r2" not in metrics  # two points: a line always fits, R² is not reported


# ------------------------------------------------------------------------------------ kill and resume


def test_killed_sweep_resumes_without_retraining(sample_shards, tmp_path, ray_tmp):
    from mlflow.tracking import MlflowClient

    from workflows.tracking import prepare_tracking

    # The store is created here, once, before two processes (the CLI and this poller) open it: concurrent
    # first opens of a SQLite store race on its schema migration.
    uri, _ = prepare_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", "sweep-it")
    config = write_sweep(tmp_path / "sweep.yaml", sample_shards, "it-resume", [4, 16], steps=10)
    cmd = [sys.executable, str(SWEEP_SCRIPT), "--config", str(config), "--tracking-uri", uri,
           "--storage", str(tmp_path / "ray")]
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=sweep_env(ray_tmp), cwd=REPO,
                            start_new_session=True)
    client = None
    finished_id = None
    deadline = time.time() + 600
    try:
        while finished_id is None:
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-5000:]
            assert time.time() < deadline, "the first child never finished"
            time.sleep(2)
            client = client or MlflowClient(uri)
            experiment = client.get_experiment_by_name("sweep-it")
            if experiment is None:
                continue
            runs = client.search_runs([experiment.experiment_id], "tags.role = 'config'")
            done = [r for r in runs if r.info.status == "FINISHED"]
            if done:
                finished_id, finished_name = done[0].info.run_id, done[0].info.run_name
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    time.sleep(3)
    leftovers = kill_ray_processes(ray_tmp)  # Ray's own processes share the driver's fate; report if not
    print(f"Ray processes left after SIGKILL of the sweep's process group: {len(leftovers)}")

    experiment_id = client.get_experiment_by_name("sweep-it").experiment_id
    (parent,) = client.search_runs([experiment_id], "tags.sweep = 'it-resume' and tags.role = 'sweep'")
    assert parent.info.status == "RUNNING"  # killed: never terminated

    proc2 = run_sweep(config, uri, tmp_path / "ray", ray_tmp)
    assert proc2.returncode == 0, (proc2.stdout + proc2.stderr)[-5000:]
    assert f"[{finished_name}] already finished in run {finished_id}: skipped" in proc2.stdout

    parents = client.search_runs([experiment_id], "tags.sweep = 'it-resume' and tags.role = 'sweep'")
    assert [p.info.run_id for p in parents] == [parent.info.run_id]  # resumed, not a second sweep
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"
    children = client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    names = sorted(c.info.run_name for c in children)
    assert names == ["c16", "c4"], names  # no duplicate child for the finished (or the resumed) config
    assert all(c.info.status == "FINISHED" for c in children)
    assert {c.info.run_name: c.info.run_id for c in children}[finished_name] == finished_id
    summary = client.download_artifacts(parent.info.run_id, "summary.csv", str(tmp_path))
    assert "skipped (already finished)" in Path(summary).read_text()
