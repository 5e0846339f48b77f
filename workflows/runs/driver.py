"""Running one planned run of any kind: a Ray Train `TorchTrainer` whose workers run the engine's step loop over
the kind's `RunSpec`, tracked in one MLflow run whose progress the driver follows.

Re-running with the same name (and parent) resumes: a FINISHED run is returned as it is (`skipped`), an
unfinished one continues from its last Ray Train checkpoint in the same MLflow run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import ray
from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from workflows.runs.checkpoints import EXPORT_DIR
from workflows.runs.progress import fit_followed, format_duration
from workflows.runs.room import check_cluster_can_hold
from workflows.runs.spec import RunSpec
from workflows.runs.worker import PHASES, WorkerConfig, train_loop_per_worker
from workflows.runtime.console import say
from workflows.runtime.paths import storage_location
from workflows.tracking import RunResult, log_metrics, open_run, run_metrics, tracking_client

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

    Raises ClusterTooSmall before any work when the connected Ray cluster cannot hold the run. `storage` is
    Ray Train's storage path (checkpoints): a local folder, a path every node shares, or `s3://`; by default
    `work/ray_results` in the working folder.
    """
    check_cluster_can_hold(spec, ray.cluster_resources())
    client = tracking_client(tracking_uri)
    run_id, finished = open_run(client, experiment_id, spec.name, spec.params(), tags, parent_run_id)
    if finished is not None:
        return finished

    scaling, schedule = spec.scaling, spec.schedule
    os.environ.setdefault(CONTROLLER_POLL_ENV, CONTROLLER_POLL_S)  # Ray Train passes it on to its controller
    worker = WorkerConfig(spec, tracking_uri, run_id, verbose)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=worker,
        scaling_config=ScalingConfig(num_workers=scaling.num_workers, use_gpu=scaling.use_gpu,
                                     placement_strategy=scaling.placement),  # fmt: skip
        # The Ray Train run is named after the MLflow run, so a re-run finds its checkpoints again.
        run_config=RunConfig(
            name=f"{spec.kind}-{run_id}",
            storage_path=storage_location(storage),
            failure_config=FailureConfig(max_failures=scaling.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=scaling.keep_checkpoints),
        ),
        datasets=spec.datasets(),
        # Each worker streams its own part of the train split; every worker gets the held-out data whole (a
        # ZeRO-3 model runs its collective forward passes in lockstep during evaluation).
        dataset_config=DataConfig(datasets_to_split=["train"]),
    )
    result, wall = fit_followed(trainer, client, run_id, spec.name, schedule.steps, schedule.global_batch_size)
    export = Path(result.checkpoint.path) / EXPORT_DIR if result.checkpoint else None
    if export is not None and spec.export_to:
        copy_export(export, spec.export_to)
    metrics = run_metrics(client, run_id)
    if all(phase in metrics for phase in PHASES):  # the rest of the wall: Ray Train's shutdown, the driver's waits
        shutdown = {"phase_shutdown_s": time.time() - worker.submitted_at - sum(metrics[p] for p in PHASES)}
        log_metrics(client, run_id, shutdown, step=schedule.steps)
        metrics.update(shutdown)
    say(result_line(spec, metrics, wall))
    return RunResult(run_id, dict(metrics), wall, skipped=False, export=str(export) if export else None)
