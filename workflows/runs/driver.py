"""Running planned runs of any kind: a Ray Train `TorchTrainer` whose workers run the engine's step loop over
each run's `RunSpec` in turn, each tracked in its own MLflow run whose progress the driver follows.

One run is a group of one. Several runs with the same scaling share one worker group (`run_group`): Ray Train's
start (its controller, the workers' processes and their imports, the process group) is then paid once for
all of them, which on a small cluster is most of a short run's time beside its steps.

Re-running with the same names (and parent) resumes: a FINISHED run is returned as it is (`skipped`), an
unfinished one continues from its last Ray Train checkpoint in the same MLflow run, when that checkpoint is
the latest of the Ray Train run (the group's name) it belongs to.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import ray
from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from workflows.runs.checkpoints import EXPORT_DIR
from workflows.runs.progress import Followed, fit_followed, format_duration
from workflows.runs.room import check_cluster_can_hold
from workflows.runs.spec import RunSpec
from workflows.runs.worker import PHASES, GroupedRun, WorkerConfig, train_loop_per_worker
from workflows.runtime.console import say
from workflows.runtime.paths import storage_location
from workflows.tracking import (
    MlflowClient, RunResult, end_run, log_metrics, model_export_location, open_run, run_by_id, run_metrics,
    tracking_client,
)

# Ray Train's controller polls its workers at this interval (Ray's default is 2 s), and a run only ends at the
# poll after its workers return: on a sweep of short configs that wait is paid once per config. A poll is one small
# actor call per worker, and a poll that does not answer in time is awaited at the next one, so a shorter
# interval declares no worker dead sooner. A value already in the environment (the user's) is kept.
CONTROLLER_POLL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
CONTROLLER_POLL_S = "0.5"


def copy_export(export: Path, destination: str) -> None:
    """Copies the export folder to a local folder or an s3:// prefix (pyarrow resolves either)."""
    import pyarrow.fs

    if "://" not in destination:
        Path(destination).mkdir(parents=True, exist_ok=True)
        destination = str(Path(destination).resolve())
    pyarrow.fs.copy_files(str(export), destination)


def result_line(spec: RunSpec, metrics: dict[str, float], wall_s: float) -> str:
    return f"[{spec.name}] finished in {format_duration(wall_s)}: {spec.result_line(metrics)}"


@dataclass
class GroupResult:
    """What `run_group` left: per spec, its result (None where it did not finish), and the error that stopped
    the group at spec `failed` (the runs after it did not start; their MLflow runs stay open to be resumed)."""

    results: list[RunResult | None]
    error: Exception | None = None
    failed: int | None = None


def run(
    spec: RunSpec,
    tracking_uri: str,
    experiment_id: str,
    parent_run_id: str | None = None,
    tags: dict[str, str] | None = None,
    storage: str | None = None,
    verbose: bool = False,
) -> RunResult:
    """Trains and evaluates one run in one MLflow run, following its progress on the console.

    Raises ClusterTooSmall before any work when the connected Ray cluster cannot hold the run, and the error
    that stopped the run. `storage` is Ray Train's storage path (checkpoints): a local folder, a path every node
    shares, or `s3://`; by default `work/ray_results` in the working folder.
    """
    outcome = run_group([spec], tracking_uri, experiment_id, parent_run_id, tags, storage, verbose)
    if outcome.error is not None:
        raise outcome.error
    return outcome.results[0]


def _datasets(runs: list[tuple[RunSpec, str]]) -> tuple[dict, list[GroupedRun]]:
    """The trainer's datasets, each read once on the driver (runs with equal data keys share theirs, named
    `{name}-{n}`), and the runs with the names of theirs."""
    datasets, names, grouped = {}, {}, []
    for spec, run_id in runs:
        key = spec.data_key()
        if key not in names:
            read = spec.datasets()
            names[key] = {name: f"{name}-{len(names)}" for name in read}
            datasets.update({names[key][name]: dataset for name, dataset in read.items()})
        grouped.append(GroupedRun(spec, run_id, names[key]))
    return datasets, grouped


def run_group(
    specs: list[RunSpec],
    tracking_uri: str,
    experiment_id: str,
    parent_run_id: str | None = None,
    tags: dict[str, str] | None = None,
    storage: str | None = None,
    verbose: bool = False,
    name: str | None = None,
) -> GroupResult:
    """Trains `specs` in turn on one worker group (they must share their `scaling`), each in its own MLflow run,
    as `run` does one. `name` names the Ray Train run (a re-run with the same name resumes from its latest
    checkpoint); by default `{kind}-{MLflow run id}` of the first run trained. Raises ClusterTooSmall before
    any work; an error during training stops the group and comes back in the result."""
    first = specs[0]
    if any(spec.scaling != first.scaling for spec in specs):
        raise ValueError(f"the runs of a worker group must share their scaling: {[s.name for s in specs]}")
    cluster = ray.cluster_resources()
    for spec in specs:
        check_cluster_can_hold(spec, cluster)
    client = tracking_client(tracking_uri)
    results: list[RunResult | None] = [None] * len(specs)
    todo: list[int] = []  # indices of the runs to train now
    opened: list[tuple[RunSpec, str]] = []
    for index, spec in enumerate(specs):
        run_id, finished = open_run(client, experiment_id, spec.name, spec.params(), tags, parent_run_id)
        if finished is not None:
            results[index] = finished
        else:
            todo.append(index)
            opened.append((spec, run_id))
    if not todo:
        return GroupResult(results)

    datasets, runs = _datasets(opened)
    scaling = first.scaling
    os.environ.setdefault(CONTROLLER_POLL_ENV, CONTROLLER_POLL_S)  # Ray Train passes it on to its controller
    worker = WorkerConfig(tuple(runs), tracking_uri, fit=uuid.uuid4().hex, verbose=verbose)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=worker,
        scaling_config=ScalingConfig(num_workers=scaling.num_workers, use_gpu=scaling.use_gpu,
                                     placement_strategy=scaling.placement),  # fmt: skip
        # Named after the MLflow run (or the group), so a re-run finds its checkpoints again.
        run_config=RunConfig(
            name=name or f"{first.kind}-{runs[0].run_id}",
            storage_path=storage_location(storage),
            failure_config=FailureConfig(max_failures=scaling.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=scaling.keep_checkpoints),
        ),
        datasets=datasets,
        # Each worker streams its own part of a train split; every worker gets the held-out data whole (a
        # ZeRO-3 model runs its collective forward passes in lockstep during evaluation).
        dataset_config=DataConfig(datasets_to_split=sorted({run.datasets["train"] for run in runs})),
    )

    def finished(k: int) -> None:  # a run before the group's last, as its MLflow run finishes
        results[todo[k]] = _finished(client, runs[k])

    followed = [Followed(r.run_id, r.spec.name, r.spec.schedule.steps, r.spec.schedule.global_batch_size)
                for r in runs]  # fmt: skip
    outcome = fit_followed(trainer, client, followed, finished)
    ended = [run_by_id(client, r.run_id).info.status == "FINISHED" for r in runs]
    for k in range(len(runs) - 1):  # those whose end the follower did not see (its last poll failed)
        if ended[k] and results[todo[k]] is None:
            results[todo[k]] = _finished(client, runs[k])
    if isinstance(outcome, Exception) and not all(ended):  # (a fit that fails after its last run ended did its work)
        stopped = ended.index(False)
        end_run(client, runs[stopped].run_id, failed=True)
        return GroupResult(results, outcome, todo[stopped])
    checkpoint = None if isinstance(outcome, Exception) else outcome.checkpoint
    export = Path(checkpoint.path) / EXPORT_DIR if checkpoint else None
    # The rest of the group's wall after its runs' phases: Ray Train's shutdown, the driver's waits.
    spent = sum(run_metrics(client, r.run_id).get(phase, 0.0) for r in runs for phase in PHASES)
    results[todo[-1]] = _finished(client, runs[-1], export, max(0.0, time.time() - worker.submitted_at - spent))
    return GroupResult(results)


def _finished(client: MlflowClient, run: GroupedRun, export: Path | None = None,
              shutdown_s: float | None = None) -> RunResult:  # fmt: skip
    """A finished run's result: its wall time logged (the sum of its phases, and `shutdown_s`, logged as
    `phase_shutdown_s`, for the group's last run), its export copied to `export_to`, its result line said.
    `export`: the final checkpoint's (the group's last run); for the group's other runs their MLflow `model/`
    artifact is the export (their checkpoints may be gone)."""
    spec = run.spec
    metrics = run_metrics(client, run.run_id)
    values = {} if shutdown_s is None else {"phase_shutdown_s": shutdown_s}
    values["wall_time_s"] = sum(metrics.get(phase, 0.0) for phase in PHASES) + (shutdown_s or 0.0)
    log_metrics(client, run.run_id, values, step=spec.schedule.steps)
    metrics.update(values)
    if spec.export_to:
        if export is not None:
            copy_export(export, spec.export_to)
        else:
            with tempfile.TemporaryDirectory() as cache:
                copy_export(Path(model_export_location(client, run.run_id, Path(cache))), spec.export_to)
    say(result_line(spec, metrics, values["wall_time_s"]))
    return RunResult(run.run_id, dict(metrics), values["wall_time_s"], skipped=False,
                     export=str(export) if export else None)  # fmt: skip
