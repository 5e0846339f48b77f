"""MLflow helpers: one parent run per sweep, one child run per config, logged by explicit run id.

Everything goes through `MlflowClient` with explicit run ids rather than mlflow's process-global
"active run", because the parent is created by the sweep driver and each child is written by rank 0 of
a Ray Train worker group, a different process (and, on a cluster, a different machine).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"


def default_tracking_uri() -> str:
    """The embedded default: a SQLite store in the working folder (the file store is deprecated)."""
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def resolve_tracking_uri(uri: str | None) -> str:
    """An explicit URI wins, then MLFLOW_TRACKING_URI (the variable MLflow itself reads), then the default.

    A relative SQLite path is made absolute so every process (job driver, Ray workers) opens the same file.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}"
    return uri


def dashboard_command(uri: str) -> str:
    if uri.startswith("sqlite:"):
        mlflow_bin = Path(sys.executable).parent / "mlflow"
        return f"{mlflow_bin} ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000"
    return f"open {uri} in a browser"


def _artifact_root(uri: str) -> str | None:
    """Where a new experiment keeps artifacts. For SQLite, beside the DB file (not the process's cwd,
    which under `ray job submit --working-dir` is a temporary copy); servers choose their own."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").as_uri()
    return None


def get_experiment_id(client: MlflowClient, uri: str, name: str) -> str:
    """Creates the experiment on first use. Doing this once, up front, also creates and migrates a
    fresh SQLite DB before any worker touches it (concurrent first opens can race on the schema)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=_artifact_root(uri))


def create_run(
    client: MlflowClient,
    experiment_id: str,
    name: str,
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
) -> str:
    all_tags = {RUN_NAME_TAG: name, **(tags or {})}
    if parent_run_id:
        all_tags[PARENT_TAG] = parent_run_id
    run = client.create_run(experiment_id, run_name=name, tags=all_tags)
    return run.info.run_id


def log_params(client: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in sorted(params.items())])


class RunLogger:
    """Writes metrics and artifacts to one existing run. Used by rank 0 only."""

    def __init__(self, tracking_uri: str, run_id: str):
        self.client = MlflowClient(tracking_uri)
        self.run_id = run_id

    def metrics(self, values: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in values.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def tags(self, values: dict[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in values.items()])

    def image(self, array: np.ndarray, artifact_file: str) -> None:
        self.client.log_image(self.run_id, array, artifact_file=artifact_file)

    def text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def file(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def folder(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Logs the folder's contents (not the folder itself) under `artifact_path`."""
        self.client.log_artifacts(self.run_id, str(path), artifact_path)

    def last_step(self, key: str) -> int:
        """The highest step already logged for `key` (0 if none).

        After a worker is lost, training resumes from the last checkpoint and redoes the steps after it;
        their metrics were already logged by the lost attempt, so the loop logs only steps past this one:
        every step reaches MLflow exactly once, with no gap and no restart from zero.
        """
        history = self.client.get_metric_history(self.run_id, key)
        return max((m.step for m in history), default=0)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)


def system_metrics(tracking_uri: str, run_id: str):
    """Starts MLflow's CPU/memory/GPU sampler for the run (from rank 0's node); call `.finish()` at the end.

    `resume_logging` continues the step numbering after a worker-group restart instead of starting over.
    """
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run_id, sampling_interval=5, resume_logging=True, tracking_uri=tracking_uri)
    monitor.start()
    return monitor


def log_table(client: MlflowClient, run_id: str, rows: list[dict[str, Any]], stem: str) -> None:
    """Logs `rows` as `{stem}.csv` and `{stem}.md` artifacts."""
    from workflows.report import rows_to_csv, rows_to_markdown

    with tempfile.TemporaryDirectory() as tmp:
        for suffix, render in (("csv", rows_to_csv), ("md", rows_to_markdown)):
            path = Path(tmp) / f"{stem}.{suffix}"
            path.write_text(render(rows))
            client.log_artifact(run_id, str(path))


def prepare_tracking(uri: str | None, experiment: str) -> tuple[str, str]:
    """Resolves the tracking URI and makes sure the store and the experiment exist (once, up front)."""
    uri = resolve_tracking_uri(uri)
    return uri, get_experiment_id(MlflowClient(uri), uri, experiment)
