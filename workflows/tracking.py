"""Every MLflow call of the workflows: the store, the experiment, runs found or created by name (a sweep's
parent, its children, a single run), what a finished run returns, metrics and artifacts, system metrics,
and the model registry (a sweep's exported tokenizers as versions of one registered model, aliases).

Everything goes through `MlflowClient` with explicit run ids rather than mlflow's process-global "active
run", because the parent is created by the sweep driver and each child is written by rank 0 of a Ray Train
worker group, a different process (and, on a cluster, a different machine).
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import tempfile
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from workflows.runtime.background import in_background
from workflows.runtime.eval_ranking import LOWER_IS_BETTER
from workflows.runtime.tracking_store import resolve_tracking_uri

PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
# MLflow 3 opens an experiment in its GenAI view unless the experiment says it is for model training.
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
ROLE_TAG, SWEEP_ROLE, CONFIG_ROLE = "role", "sweep", "config"

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What one training run left in MLflow."""

    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    wall_time_s: float = 0.0
    skipped: bool = False  # it had already FINISHED; nothing was trained this time
    export: str | None = None  # the exported weights (model.safetensors + config.json), when trained now


def _artifact_root(uri: str) -> str | None:
    """Where a new experiment keeps artifacts. For SQLite, beside the DB file (not the process's cwd,
    which under `ray job submit --working-dir` is a temporary copy); servers choose their own."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").as_uri()
    return None


def prepare_tracking(uri: str | None, experiment: str) -> tuple[str, str]:
    """Resolves the tracking URI and makes sure the store and the experiment exist (once, up front, which
    also creates and migrates a fresh SQLite DB before any worker opens it: concurrent first opens race on
    the schema). Returns (uri, experiment id)."""
    uri = resolve_tracking_uri(uri)
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        experiment_id = client.create_experiment(
            experiment, artifact_location=_artifact_root(uri), tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
        )
    else:
        experiment_id = found.experiment_id
        if found.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return uri, experiment_id


def git_commit() -> str:
    """The short commit of this checkout, recorded on every run ("unknown" outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def find_run(client: MlflowClient, experiment_id: str, name: str, parent_run_id: str | None) -> Run | None:
    """The newest run named `name` under `parent_run_id` (None: a top-level run), or None."""
    query = f"attributes.run_name = '{name}'"
    for run in client.search_runs([experiment_id], query, order_by=["attributes.start_time DESC"]):
        if run.data.tags.get(PARENT_TAG) == parent_run_id:
            return run
    return None


def find_parent(client: MlflowClient, experiment_id: str, sweep: str) -> str | None:
    """The latest not-FINISHED parent run of sweep `sweep`, or None."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.sweep = '{sweep}' and tags.{ROLE_TAG} = '{SWEEP_ROLE}'",
        order_by=["attributes.start_time DESC"],
    )
    return next((run.info.run_id for run in runs if run.info.status != "FINISHED"), None)


def find_children(client: MlflowClient, experiment_id: str, parent_id: str) -> dict[str, Run]:
    """Run name -> the newest child run of `parent_id` with that name."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'", order_by=["attributes.start_time ASC"]
    )
    return {run.info.run_name: run for run in runs}


def finished_result(run: Run) -> RunResult | None:
    """What a FINISHED run returns when it is asked for again (it is not retrained); None if unfinished."""
    if run.info.status != "FINISHED":
        return None
    metrics = dict(run.data.metrics)
    return RunResult(run.info.run_id, metrics, metrics.get("wall_time_s", 0.0), skipped=True)


def create_run(client: MlflowClient, experiment_id: str, name: str, tags: dict[str, str] | None = None,
               parent_run_id: str | None = None) -> str:
    all_tags = {RUN_NAME_TAG: name, **(tags or {})}
    if parent_run_id:
        all_tags[PARENT_TAG] = parent_run_id
    return client.create_run(experiment_id, run_name=name, tags=all_tags).info.run_id


def open_run(client: MlflowClient, experiment_id: str, name: str, params: dict[str, Any],
             tags: dict[str, str] | None = None, parent_run_id: str | None = None) -> tuple[str, RunResult | None]:
    """Finds or creates the run `name` (under `parent_run_id`): (run id, its result if it had FINISHED).

    An unfinished run is reopened (status RUNNING) so that training resumes in it; a new one gets `params`.
    """
    previous = find_run(client, experiment_id, name, parent_run_id)
    if previous is not None:
        done = finished_result(previous)
        if done is None:
            client.update_run(previous.info.run_id, status="RUNNING")
        return previous.info.run_id, done
    run_id = create_run(client, experiment_id, name, tags=tags, parent_run_id=parent_run_id)
    log_params(client, run_id, params)
    return run_id, None


def open_parent(client: MlflowClient, experiment_id: str, sweep: str, params: dict[str, Any],
                tags: dict[str, str], new: bool = False) -> tuple[str, bool]:
    """(parent run id, resumed?): the sweep's unfinished parent run, or a new one (always a new one if `new`)."""
    parent_id = None if new else find_parent(client, experiment_id, sweep)
    if parent_id is not None:
        client.update_run(parent_id, status="RUNNING")
        client.log_batch(parent_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])  # this attempt's commit
        return parent_id, True
    parent_id = create_run(client, experiment_id, sweep, tags={**tags, "sweep": sweep, ROLE_TAG: SWEEP_ROLE})
    log_params(client, parent_id, params)
    return parent_id, False


def model_export_location(client: MlflowClient, run_id: str, cache_dir: Path) -> str:
    """Where a finished run's model export (its `model/` artifact) can be loaded from by trainers: s3://
    as it is (every worker reads it), a local store's own folder, else a copy downloaded into `cache_dir`."""
    return export_location(client, f"runs:/{run_id}/{MODEL_ARTIFACT}", cache_dir)


def log_params(client: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in sorted(params.items())])


def log_text_files(client: MlflowClient, run_id: str, files: dict[str, str], artifact_path: str | None = None) -> None:
    """Logs each `{file name: text}` as an artifact of the run."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            path = Path(tmp) / name
            path.write_text(text)
            client.log_artifact(run_id, str(path), artifact_path)


def tracking_client(tracking_uri: str, registry: bool = False) -> MlflowClient:
    """The handle other modules pass back to these functions; `registry`: the registry is in the same store."""
    return MlflowClient(tracking_uri, registry_uri=tracking_uri) if registry else MlflowClient(tracking_uri)


def run_metrics(client: MlflowClient, run_id: str) -> dict[str, float]:
    """The run's latest value of each metric."""
    return dict(client.get_run(run_id).data.metrics)


def metric_history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) of every logged value of one metric, by step."""
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def log_metrics(client: MlflowClient, run_id: str, values: dict[str, float], step: int = 0) -> None:
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])


def set_tags(client: MlflowClient, run_id: str, tags: dict[str, str]) -> None:
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_files(client: MlflowClient, run_id: str, paths: list[Path], artifact_path: str | None = None) -> None:
    for path in paths:
        client.log_artifact(run_id, str(path), artifact_path)


def run_named(client: MlflowClient, name: str, experiment: str | None = None) -> str | None:
    """The id of a run named `name` in the experiment named `experiment` (any experiment: None); None if none."""
    ids = [e.experiment_id for e in client.search_experiments() if experiment is None or e.name == experiment]
    found = client.search_runs(ids, f"tags.mlflow.runName = '{name}'", max_results=1) if ids else []
    return found[0].info.run_id if found else None


def end_run(client: MlflowClient, run_id: str, failed: bool = False) -> None:
    client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")


# Each training run's per-sample validation values (evaluation's columns: sample_id, group, psnr, ...), so a
# sweep's report can resample every run's validation set alike.
PER_SAMPLE_ARTIFACT = "eval/per_sample.json"


def load_per_sample(client: MlflowClient, run_id: str) -> dict[str, list] | None:
    """The run's per-sample validation values; None when it logged none (a run from before they were logged)."""
    folder, name = PER_SAMPLE_ARTIFACT.rsplit("/", 1)
    if name not in {Path(f.path).name for f in client.list_artifacts(run_id, folder)}:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(Path(client.download_artifacts(run_id, PER_SAMPLE_ARTIFACT, tmp)).read_text())


class RunLogger:
    """Writes metrics and artifacts to one existing run. Used by rank 0 only."""

    def __init__(self, tracking_uri: str, run_id: str):
        self.tracking_uri, self.run_id = tracking_uri, run_id
        # Opening the store takes seconds (for SQLite: MLflow's SQLAlchemy store and its schema check), and the
        # other ranks would wait for rank 0 at the engine's first collective: it opens while the engine builds.
        self.opening: Future[MlflowClient] = in_background(lambda: MlflowClient(tracking_uri), "mlflow-open")

    @property
    def client(self) -> MlflowClient:
        return self.opening.result()

    def metrics(self, values: dict[str, float], step: int) -> None:
        log_metrics(self.client, self.run_id, values, step)

    def tags(self, values: dict[str, str]) -> None:
        set_tags(self.client, self.run_id, values)

    def image(self, array: np.ndarray, artifact_file: str) -> None:
        self.client.log_image(self.run_id, array, artifact_file=artifact_file)

    def json(self, data: dict[str, Any], artifact_file: str) -> None:
        self.client.log_dict(self.run_id, data, artifact_file)

    def folder(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Logs the folder's contents (not the folder itself) under `artifact_path`."""
        self.client.log_artifacts(self.run_id, str(path), artifact_path)

    def last_step(self, key: str) -> int:
        """The highest step already logged for `key` (0 if none).

        After a worker is lost, training resumes from the last checkpoint and redoes the steps after it;
        their metrics were already logged by the lost attempt, so the loop logs only steps past this one:
        every step reaches MLflow exactly once, with no gap and no restart from zero.
        """
        return max((m.step for m in self.client.get_metric_history(self.run_id, key)), default=0)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)


def start_system_metrics(tracking_uri: str, run_id: str, interval_s: float):
    """MLflow's CPU/memory/GPU sampler for the run, from this process's node; None where it cannot run.
    Call `.finish()` at the end. `resume_logging` continues the step numbering after a restart."""
    try:
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        monitor = SystemMetricsMonitor(run_id, sampling_interval=interval_s, resume_logging=True,
                                       tracking_uri=tracking_uri)
        monitor.start()
        return monitor
    except Exception as err:  # noqa: BLE001 - optional: psutil missing and the like; the run goes on
        log.warning("no system metrics for run %s: %s", run_id, err)
        return None


# Every tokenizer a sweep exports becomes a version of one registered model per sweep, so it can be named as
# `models:/<name>/<version>` or `models:/<name>@<alias>` (workflows/latents/tokenizer.py resolves those).

MODEL_ARTIFACT = "model"  # the run artifact that holds the export (model.safetensors + config.json)


def registered_model_name(sweep: str) -> str:
    """The registry name of a sweep's tokenizers: `vitok-<sweep>`, characters other than letters, digits,
    '.', '_' and '-' replaced by '-' (the registry refuses '/', ':' and the like)."""
    return "vitok-" + "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in sweep)


def register_exports(client: MlflowClient, sweep: str, runs: list[tuple[str, dict[str, str]]]) -> list[ModelVersion]:
    """Registers the `model/` export of each finished run as a version of the sweep's registered model.

    `runs` holds (run id, tags), e.g. the config name and E; each version is tagged with those, the run's
    eval metrics (`eval_*`) and the sweep. A run registered before keeps its version (reruns add nothing), and
    a run without a `model/` artifact is left out. Returns the runs' versions, in the order of `runs`.
    """
    name = registered_model_name(sweep)
    try:
        client.get_registered_model(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(name, tags={"sweep": sweep},
                                       description=f"ViTok tokenizers exported by the sweep '{sweep}'")
    versions = []
    for run_id, tags in runs:
        existing = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
        if existing:
            versions.append(existing[0])
            continue
        run = client.get_run(run_id)
        if not client.list_artifacts(run_id, MODEL_ARTIFACT):
            continue
        metrics = {k: str(v) for k, v in run.data.metrics.items() if k.startswith("eval_")}
        versions.append(client.create_model_version(
            name, source=f"{run.info.artifact_uri.rstrip('/')}/{MODEL_ARTIFACT}", run_id=run_id,
            tags={"sweep": sweep, **tags, **metrics},
        ))
    return versions


def set_alias_to_best(client: MlflowClient, name: str, alias: str, metric: str) -> ModelVersion:
    """Points `alias` of registered model `name` at its version with the best `metric` tag (highest, or
    lowest for LOWER_IS_BETTER); ties go to the earlier version. Raises LookupError when no version has it."""
    versions = [v for v in client.search_model_versions(f"name = '{name}'") if metric in v.tags]
    if not versions:
        raise LookupError(f"registered model {name}: no version is tagged with the metric {metric}")
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    best = max(versions, key=lambda v: (sign * float(v.tags[metric]), -int(v.version)))
    client.set_registered_model_alias(name, alias, best.version)
    return best


def find_model_version(client: MlflowClient, name: str, version: str | None = None,
                       alias: str | None = None) -> ModelVersion:
    """Version `version` (or the one `alias` names) of registered model `name`; LookupError saying which
    part does not exist (the model, the version or the alias) and what does."""
    try:
        model = client.get_registered_model(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise LookupError(f"no registered model named '{name}' in {client.tracking_uri}") from None
    if alias is not None:
        if alias not in model.aliases:
            known = ", ".join(sorted(model.aliases)) or "none"
            raise LookupError(f"registered model '{name}' has no alias '{alias}' (its aliases: {known})")
        return client.get_model_version(name, model.aliases[alias])
    try:
        return client.get_model_version(name, version)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        known = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
        listed = ", ".join(map(str, known)) or "none"
        raise LookupError(f"registered model '{name}' has no version {version} (its versions: {listed})") from None


_RUNS_REFERENCE = re.compile(r"^runs:/(?P<run_id>[^/]+)/(?P<path>.+)$")
_MODELS_REFERENCE = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/@]+))$")


def registry_source(client: MlflowClient, reference: str) -> tuple[str, dict[str, str]]:
    """(artifact URI, what it is in the registry: run_id, and name/version/alias for a model) of a `runs:/<run
    id>/<path>`, `models:/<name>/<version>` or `models:/<name>@<alias>` reference. LookupError when it names
    nothing that exists, ValueError when it is none of these forms."""
    runs, models = _RUNS_REFERENCE.match(reference), _MODELS_REFERENCE.match(reference)
    if runs:
        return run_artifact_uri(client, runs["run_id"], runs["path"].strip("/")), {"run_id": runs["run_id"]}
    if models:
        version = find_model_version(client, models["name"], models["version"], models["alias"])
        return version.source, {"name": version.name, "version": str(version.version), "run_id": version.run_id,
                                **({"alias": models["alias"]} if models["alias"] else {})}  # fmt: skip
    raise ValueError("expected runs:/<run_id>/<path>, models:/<name>/<version> or models:/<name>@<alias>")


def export_location(client: MlflowClient, reference: str, cache_dir: Path) -> str:
    """Where trainers load a registry reference's export from: s3:// as it is (every worker reads it), a local
    store's own folder, else a copy downloaded into `cache_dir`."""
    source, _ = registry_source(client, reference)
    if source.startswith("s3://"):
        return source
    return str(fetch_artifacts(client, source, Path(cache_dir).resolve() / re.sub(r"[^\w.-]+", "_", reference)))


def run_artifact_uri(client: MlflowClient, run_id: str, path: str) -> str:
    """The URI of artifact `path` of run `run_id`; LookupError when the run or the artifact does not exist."""
    run = run_by_id(client, run_id)
    # Listing a file's own path gives nothing in a local store (it lists folders), so list its folder.
    folder = path.rsplit("/", 1)[0] if "/" in path else None
    if path not in {f.path for f in client.list_artifacts(run_id, folder)}:
        raise LookupError(f"run {run_id} has no artifact '{path}'")
    return f"{run.info.artifact_uri.rstrip('/')}/{path}"


def fetch_artifacts(client: MlflowClient, artifact_uri: str, target: Path) -> Path:
    """A local folder holding the artifacts at `artifact_uri`: the folder itself for a local store, else a
    copy downloaded into `target` (through the tracking server for mlflow-artifacts:/ URIs)."""
    if artifact_uri.startswith("file://"):
        return Path(artifact_uri[len("file://"):])
    if artifact_uri.startswith("/"):
        return Path(artifact_uri)
    from mlflow.artifacts import download_artifacts

    target.mkdir(parents=True, exist_ok=True)
    return Path(download_artifacts(artifact_uri=artifact_uri, dst_path=str(target), tracking_uri=client.tracking_uri))


def sweep_exports(client: MlflowClient, experiment_id: str, sweep: str) -> list[tuple[str, dict[str, str]]]:
    """(run id, tags) of every FINISHED config run of sweep `sweep`, under any of its parent runs, oldest
    first: what register_exports takes. The tags name the config, its variant and E (from the run's params)."""
    query = f"tags.sweep = '{sweep}' and tags.{ROLE_TAG} = '{CONFIG_ROLE}' and attributes.status = 'FINISHED'"
    runs = client.search_runs([experiment_id], query, order_by=["attributes.start_time ASC"])
    return [(r.info.run_id, {"config": r.info.run_name, "variant": r.data.params.get("model.variant", ""),
                             "E": r.data.params.get("E", "")}) for r in runs]  # fmt: skip


# A generator run (workflows/generation/) is a child of the tokenizer run whose latents it trains on.

def run_by_id(client: MlflowClient, run_id: str) -> Run:
    """The run `run_id`; LookupError naming the store when it has no such run."""
    try:
        return client.get_run(run_id)
    except MlflowException as err:
        if err.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        raise LookupError(f"no run with id {run_id} in {client.tracking_uri}") from None
