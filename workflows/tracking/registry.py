"""The model registry and where exports and artifacts are loaded from: a sweep's exported tokenizers as versions
of one registered model with aliases, `runs:/` and `models:/` references resolved to their sources, and local
folders for artifacts on any store.
"""

from __future__ import annotations

import re
from pathlib import Path

from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from workflows.tracking import CONFIG_ROLE, ROLE_TAG

# Eval metrics where a lower value is the better tokenizer; for every other metric higher is better.
LOWER_IS_BETTER = frozenset({"eval_lpips", "eval_rfid", "eval_rfvd"})
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


def model_export_location(client: MlflowClient, run_id: str, cache_dir: Path) -> str:
    """Where a finished run's model export (its `model/` artifact) can be loaded from by trainers: s3://
    as it is (every worker reads it), a local store's own folder, else a copy downloaded into `cache_dir`."""
    return export_location(client, f"runs:/{run_id}/{MODEL_ARTIFACT}", cache_dir)
