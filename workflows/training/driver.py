"""Running one planned config: a Ray Train `TorchTrainer` whose workers run a DeepSpeed engine over ViTok,
data from the tubelet shards through Ray Data's streaming split, tracked in one MLflow run.

Re-running a config with the same name (and parent) resumes it: a FINISHED run is returned as it is
(`skipped`), an unfinished one continues from its last Ray Train checkpoint in the same MLflow run.
"""

from __future__ import annotations

from pathlib import Path

import ray
from mlflow.tracking import MlflowClient
from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from workflows.runtime.console import say
from workflows.runtime.paths import storage_location
from workflows.tracking import RunResult, open_run
from workflows.training.checkpoints import EXPORT_DIR
from workflows.training.ingest import training_datasets
from workflows.training.plan import RunPlan
from workflows.training.progress import fit_followed, format_duration
from workflows.training.resources import check_cluster_can_hold
from workflows.training.worker import WorkerConfig, train_loop_per_worker


def copy_export(export: Path, destination: str) -> None:
    """Copies the export folder to a local folder or an s3:// prefix (pyarrow resolves either)."""
    import pyarrow.fs

    if "://" not in destination:
        Path(destination).mkdir(parents=True, exist_ok=True)
        destination = str(Path(destination).resolve())
    pyarrow.fs.copy_files(str(export), destination)


def result_line(name: str, metrics: dict[str, float], wall_s: float) -> str:
    shown = [f"{label} {metrics[key]:.4g}" for key, label in
             (("eval_psnr", "PSNR"), ("eval_ssim", "SSIM"), ("eval_lpips", "LPIPS"), ("eval_rfid", "rFID"),
              ("eval_rfvd", "rFVD")) if key in metrics]
    return f"[{name}] finished in {format_duration(wall_s)}: " + (", ".join(shown) or "no held-out split")


def run_training(
    plan: RunPlan,
    tracking_uri: str,
    experiment_id: str,
    parent_run_id: str | None = None,
    tags: dict[str, str] | None = None,
    storage: str | None = None,
    verbose: bool = False,
) -> RunResult:
    """Trains and evaluates one config in one MLflow run, following its progress on the console.

    Raises ClusterTooSmall before any work when the connected Ray cluster cannot hold the run.

    `storage` is Ray Train's storage path (checkpoints): a local folder, a path every node shares, or
    `s3://`; by default `work/ray_results` in the working folder.
    """
    config = plan.config
    check_cluster_can_hold(plan, ray.cluster_resources())
    client = MlflowClient(tracking_uri)
    run_id, finished = open_run(client, experiment_id, config.name, plan.params(), tags, parent_run_id)
    if finished is not None:
        return finished

    datasets = training_datasets(config, plan.train_rows, plan.val_rows, plan.frames * plan.resolution**2 * 3)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=WorkerConfig(plan, tracking_uri, run_id, verbose),
        scaling_config=ScalingConfig(num_workers=config.train.num_workers, use_gpu=config.train.use_gpu,
                                     placement_strategy=config.train.placement),
        # The Ray Train run is named after the MLflow run, so a re-run finds its checkpoints again.
        run_config=RunConfig(
            name=f"vitok-{run_id}",
            storage_path=storage_location(storage),
            failure_config=FailureConfig(max_failures=config.train.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=config.train.keep_checkpoints),
        ),
        datasets=datasets,
        # Each worker streams its own part of the train split; every worker sees all of val, so that
        # a ZeRO-3 model can run its collective forward passes in lockstep during evaluation.
        dataset_config=DataConfig(datasets_to_split=["train"]),
    )
    result, wall = fit_followed(trainer, client, run_id, config.name, config.train.steps, config.train.global_batch_size)
    export = Path(result.checkpoint.path) / EXPORT_DIR if result.checkpoint else None
    if export is not None and config.train.export_to:
        copy_export(export, config.train.export_to)
    metrics = client.get_run(run_id).data.metrics
    say(result_line(config.name, metrics, wall))
    return RunResult(run_id, dict(metrics), wall, skipped=False, export=str(export) if export else None)
