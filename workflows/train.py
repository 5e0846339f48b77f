"""Train one ViTok config: Ray Train `TorchTrainer` workers running a DeepSpeed ZeRO engine, data from the
tubelet shards through Ray Data's streaming split, tracked in one MLflow run written by rank 0.

    python workflows/train.py --config workflows/configs/smoke.yaml --run c16

trains one run of a sweep file on its own (no parent run); `scale_sweep.py` calls `run_training` for each.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from data_prep.reader import load_manifest
from vitok import ViTokConfig, model_stats
from vitok.checkpoint import CONFIG_NAME, resolve_path
from vitok.config import check_input_shape
from workflows.checkpoints import EXPORT_DIR
from workflows.cluster import connect_ray
from workflows.config import ConfigError, TrainConfig, absolute_location
from workflows.deepspeed_config import deepspeed_config
from workflows.ingest import training_datasets
from workflows.sweep_config import load_sweep
from workflows.tracking import (
    PARENT_TAG,
    MlflowClient,
    create_run,
    dashboard_command,
    log_params,
    prepare_tracking,
)
from workflows.train_loop import train_loop_per_worker


@dataclass
class RunPlan:
    """A validated config plus what the data and the model say about it (logged as params)."""

    config: TrainConfig
    frames: int
    resolution: int
    stats: dict[str, Any]
    train_rows: int
    val_rows: int  # 0: the shards have no held-out split, so the run records no eval metrics

    def params(self) -> dict[str, Any]:
        s = self.stats
        return {
            **self.config.flat(),
            "E": s["E"],
            "L": s["tokens"],
            "c": s["channels"],
            "p": s["patch"],
            "q": s["tubelet"],
            "input": f"{self.frames}x{self.resolution}x{self.resolution}",
            "params": s["params"],
            "encoder_params": s["encoder_params"],
            "decoder_params": s["decoder_params"],
            "gmacs": round(s["gmacs"], 4),
            "world_size": self.config.train.num_workers,
            "zero_stage": self.config.train.zero_stage,
            "global_batch_size": self.config.train.global_batch_size,
            "peak_lr": self.config.peak_lr,
            "train_rows": self.train_rows,
            "val_rows": self.val_rows,
            "lpips": "on" if self.config.weights.lpips and self.config.optim.lpips_weight > 0 else "off",
            "rfid": "on" if self.config.weights.inception else "off",
            "rfvd": "on" if self.config.weights.i3d and self.frames > 1 else "off",
        }


def plan_run(config: TrainConfig, where: str = "") -> RunPlan:
    """Checks the variant, the shards, the input shape and the DeepSpeed config, with one-line errors
    naming `where` (e.g. the sweep file) and the run, before any work."""
    prefix = f"{where}: run '{config.name}'" if where else f"run '{config.name}'"
    try:
        return _plan(config)
    except ValueError as err:  # ConfigError, DataPrepError and vitok's errors are all ValueErrors
        raise ConfigError(f"{prefix}: {err}") from None


def _plan(config: TrainConfig) -> RunPlan:
    try:
        model_config = ViTokConfig.from_name(config.model.variant, channels=config.model.channels)
    except ValueError as err:
        raise ConfigError(f"model.variant: {err}") from None
    if config.train.stage == 2:  # the model is the stage-1 export's, whatever the variant says
        config.train.init_from = absolute_location(config.train.init_from)  # workers have another cwd
        try:
            export_config = json.loads((resolve_path(config.train.init_from) / CONFIG_NAME).read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(f"train.init_from {config.train.init_from}: no readable {CONFIG_NAME} ({err})") from None
        model_config = ViTokConfig.from_dict(export_config)
    deepspeed_config(config, config.train.num_workers)
    manifest = load_manifest(config.data.shards)
    params = manifest["params"]
    shards = [s for s in manifest["shards"] if s["media_type"] == config.data.media_type]
    train_rows = sum(s["train_rows"] for s in shards)
    val_rows = sum(s["val_rows"] for s in shards)
    if train_rows < config.train.micro_batch_size * config.train.num_workers:
        raise ConfigError(
            f"{config.data.shards} has {train_rows} {config.data.media_type} train tubelets, "
            f"fewer than one micro-batch per worker ({config.train.micro_batch_size} x {config.train.num_workers})"
        )
    frames = 1 if config.data.media_type == "image" else int(params["frames"])
    resolution = config.data.crop or int(params["size"])
    if resolution > int(params["size"]):
        raise ConfigError(f"data.crop {resolution} is larger than the shards' size {params['size']}")
    check_input_shape(model_config, frames, resolution, resolution)
    stats = model_stats(model_config, frames, resolution, resolution)
    return RunPlan(config, frames, resolution, stats, train_rows=train_rows, val_rows=val_rows)


def copy_export(export: Path, destination: str) -> None:
    """Copies the export folder to a local folder or an s3:// prefix (pyarrow resolves either)."""
    import pyarrow.fs

    if "://" not in destination:
        Path(destination).mkdir(parents=True, exist_ok=True)
        destination = str(Path(destination).resolve())
    pyarrow.fs.copy_files(str(export), destination)


def find_run(client: MlflowClient, experiment_id: str, name: str, parent_run_id: str | None):
    """The MLflow run of config `name` (under `parent_run_id`, or a top-level one), newest first, or None."""
    query = f"attributes.run_name = '{name}'"
    for run in client.search_runs([experiment_id], query, order_by=["attributes.start_time DESC"]):
        if run.data.tags.get(PARENT_TAG) == parent_run_id:
            return run
    return None


def run_training(
    plan: RunPlan,
    tracking_uri: str,
    experiment_id: str,
    parent_run_id: str | None = None,
    tags: dict[str, str] | None = None,
    storage_path: str | None = None,
) -> dict[str, Any]:
    """Trains and evaluates one config in one MLflow run; returns its id, final metrics, wall time and export.

    Re-running a config with the same name (and parent) resumes it: a FINISHED run is returned as it is
    (`skipped`), an unfinished one continues from its last Ray Train checkpoint in the same MLflow run.
    """
    config = plan.config
    client = MlflowClient(tracking_uri)
    previous = find_run(client, experiment_id, config.name, parent_run_id)
    if previous is not None and previous.info.status == "FINISHED":
        return {
            "run_id": previous.info.run_id,
            "metrics": previous.data.metrics,
            "wall_time_s": previous.data.metrics.get("wall_time_s", 0.0),
            "skipped": True,
        }
    if previous is not None:
        run_id = previous.info.run_id
        client.update_run(run_id, status="RUNNING")
    else:
        run_id = create_run(client, experiment_id, config.name, tags=tags, parent_run_id=parent_run_id)
        log_params(client, run_id, plan.params())

    datasets = training_datasets(config, plan.train_rows, plan.val_rows, plan.frames * plan.resolution**2 * 3)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "config": config.to_dict(),
            "tracking_uri": tracking_uri,
            "run_id": run_id,
            "datasets": sorted(datasets),
            "gmacs": plan.stats["gmacs"],  # per sample, forward: for MFU on GPU
        },
        scaling_config=ScalingConfig(num_workers=config.train.num_workers, use_gpu=config.train.use_gpu),
        # The Ray Train run is named after the MLflow run, so a re-run finds its checkpoints again.
        run_config=RunConfig(
            name=f"vitok-{run_id}",
            storage_path=storage_path,
            failure_config=FailureConfig(max_failures=config.train.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=config.train.keep_checkpoints),
        ),
        datasets=datasets,
        # Each worker streams its own part of the train split; every worker sees all of val, so that
        # a ZeRO-3 model can run its collective forward passes in lockstep during evaluation.
        dataset_config=DataConfig(datasets_to_split=["train"]),
    )
    start = time.perf_counter()
    try:
        result = trainer.fit()
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    wall = time.perf_counter() - start
    client.log_metric(run_id, "wall_time_s", wall)
    export = Path(result.checkpoint.path) / EXPORT_DIR if result.checkpoint else None
    if export is not None and config.train.export_to:
        copy_export(export, config.train.export_to)
    return {
        "run_id": run_id,
        "metrics": client.get_run(run_id).data.metrics,
        "wall_time_s": wall,
        "export": str(export) if export else None,
        "skipped": False,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="workflows/configs/smoke.yaml", help="sweep YAML file")
    parser.add_argument("--run", required=True, help="name of the run in the sweep file to train")
    parser.add_argument("--shards", default=None, help="override data.shards")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite ./mlflow.db)")
    parser.add_argument("--storage-path", default=None, help="Ray Train storage path (default: ~/ray_results)")
    args = parser.parse_args(argv)
    overrides = {"data": {"shards": absolute_location(args.shards)}} if args.shards else None
    try:
        sweep = load_sweep(args.config, overrides)
        matches = [c for c in sweep.configs if c.name == args.run]
        if not matches:
            names = ", ".join(c.name for c in sweep.configs)
            raise ConfigError(f"{args.config}: no run named '{args.run}' (runs: {names})")
        plan = plan_run(matches[0], where=args.config)
    except (ConfigError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    tracking_uri, experiment_id = prepare_tracking(args.tracking_uri, sweep.experiment)
    connect_ray()
    result = run_training(plan, tracking_uri, experiment_id, storage_path=args.storage_path)
    print(json.dumps({"run_id": result["run_id"], "export": result.get("export"),
                      **{k: v for k, v in result["metrics"].items() if k.startswith("eval_")}}))
    print(f"Open the dashboard: {dashboard_command(tracking_uri)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
