"""Running one planned generator: a Ray Train `TorchTrainer` whose workers train a DiT on the latents (DDP), then
sample, decode and score; tracked in one MLflow run, a child of the tokenizer's run.

Re-running with the same name under the same parent resumes it: a FINISHED run is returned as it is
(`skipped`), an unfinished one continues from its last Ray Train checkpoint in the same MLflow run.
"""

from __future__ import annotations

from pathlib import Path

import ray
from mlflow.tracking import MlflowClient
from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from workflows.config import GenerationConfig
from workflows.generation.checkpoints import EXPORT_DIR
from workflows.generation.ingest import generation_datasets
from workflows.generation.plan import GenerationPlan
from workflows.generation.worker import GeneratorWorkerConfig, train_loop_per_worker
from workflows.runtime.console import say
from workflows.runtime.paths import storage_location
from workflows.tracking import ROLE_TAG, RunResult, open_run
from workflows.training.progress import fit_followed, format_duration
from workflows.training.resources import DATA_READ_CPUS, ClusterTooSmall

GENERATOR_ROLE = "generator"  # the `role` tag of generator runs (a sweep's are "sweep", its tokenizers' "config")


def check_cluster_can_hold(plan: GenerationPlan, cluster: dict[str, float]) -> None:
    """Raises ClusterTooSmall with one line when `cluster` (ray.cluster_resources()) cannot hold the run: a
    CPU per worker, a GPU each on GPU runs, and a CPU for Ray Data when the train latents stream."""
    check_workers_fit(plan.config, cluster, f"generator '{plan.name}'", plan.train_streams)


def check_workers_fit(config: GenerationConfig, cluster: dict[str, float], who: str, streams: bool = False) -> None:
    """The check of `check_cluster_can_hold` for a config whose latents do not exist yet (a sweep's probe,
    checked before the sweep trains anything): `streams` says whether Ray Data's read tasks need a CPU too."""
    need = {"CPU": float(config.num_workers + (DATA_READ_CPUS if streams else 0))}
    if config.use_gpu:
        need["GPU"] = float(config.num_workers)
    for resource, amount in need.items():
        have = cluster.get(resource, 0.0)
        if have < amount:
            streaming = " + 1 for Ray Data's read tasks" if streams and resource == "CPU" else ""
            raise ClusterTooSmall(f"{who} needs {amount:g} {resource} ({config.num_workers} workers{streaming}) but "
                                  f"the cluster has {have:g}: lower num_workers or add nodes")


def result_line(name: str, metrics: dict[str, float], wall_s: float) -> str:
    shown = [f"{label} {metrics[key]:.4g}" for key, label in
             (("gen_swd", "SWD"), ("gen_fid", "gFID"), ("gen_fvd", "gFVD")) if key in metrics]  # fmt: skip
    return f"[{name}] finished in {format_duration(wall_s)}: " + ", ".join(shown)


def run_generator(
    plan: GenerationPlan,
    tokenizer_files: dict[str, bytes],
    tracking_uri: str,
    experiment_id: str,
    tags: dict[str, str] | None = None,
    storage: str | None = None,
    verbose: bool = False,
) -> RunResult:
    """Trains, samples and scores one generator in one MLflow run (under `plan.parent_run_id`).

    `experiment_id` must be the parent's experiment when there is a parent (plan.experiment_id). `storage` is
    Ray Train's storage path for checkpoints (default work/ray_results). Raises ClusterTooSmall before any work
    when the connected Ray cluster cannot hold the run.
    """
    c = plan.config
    check_cluster_can_hold(plan, ray.cluster_resources())
    client = MlflowClient(tracking_uri)
    run_id, finished = open_run(client, experiment_id, plan.name, plan.params(),
                                {**(tags or {}), ROLE_TAG: GENERATOR_ROLE}, plan.parent_run_id)
    if finished is not None:
        return finished

    datasets, classes = generation_datasets(plan)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=GeneratorWorkerConfig(plan, {"files": ray.put(tokenizer_files)}, classes, tracking_uri,
                                                run_id, verbose),  # fmt: skip
        scaling_config=ScalingConfig(num_workers=c.num_workers, use_gpu=c.use_gpu),
        # The Ray Train run is named after the MLflow run, so a re-run finds its checkpoints again.
        run_config=RunConfig(
            name=f"dit-{run_id}",
            storage_path=storage_location(storage),
            failure_config=FailureConfig(max_failures=c.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=c.keep_checkpoints),
        ),
        datasets=datasets,
        # Each worker streams its own part of the train latents; the held-out reals go whole to every worker
        # (only rank 0 reads them).
        dataset_config=DataConfig(datasets_to_split=["train"]),
    )
    result, wall = fit_followed(trainer, client, run_id, plan.name, c.steps, c.global_batch_size)
    export = Path(result.checkpoint.path) / EXPORT_DIR if result.checkpoint else None
    metrics = client.get_run(run_id).data.metrics
    say(result_line(plan.name, metrics, wall))
    return RunResult(run_id, dict(metrics), wall, skipped=False, export=str(export) if export else None)
