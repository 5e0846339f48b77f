"""Train one ViTok config: Ray Train `TorchTrainer` workers running a DeepSpeed ZeRO engine, data from the
tubelet shards through Ray Data's streaming split, tracked in one MLflow run written by rank 0.

    python workflows/train.py --config workflows/configs/smoke.yaml --run c8

trains one run of a sweep file on its own (no parent run); `scale_sweep.py` calls `run_training` for each.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray
import ray.train
import torch
from ray.train import DataConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from data_prep.reader import load_manifest, read_tubelets
from vitok import ViTok, ViTokConfig, model_stats
from vitok.config import check_input_shape
from vitok.losses import stage1_loss
from workflows.config import ConfigError, TrainConfig
from workflows.deepspeed_config import deepspeed_config
from workflows.evaluate import evaluate, pixels_to_model_input
from workflows.optim import build_optimizer
from workflows.cluster import connect_ray
from workflows.sweep_config import load_sweep
from workflows.tracking import MlflowClient, RunLogger, create_run, log_params, prepare_tracking


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
        }


def plan_run(config: TrainConfig) -> RunPlan:
    """Checks the variant, the shards and the input shape, with one-line errors, before any work."""
    try:
        model_config = ViTokConfig.from_name(config.model.variant, channels=config.model.channels)
    except ValueError as err:
        raise ConfigError(f"{config.name}: model.variant: {err}") from None
    manifest = load_manifest(config.data.shards)
    params = manifest["params"]
    shards = [s for s in manifest["shards"] if s["media_type"] == config.data.media_type]
    train_rows = sum(s["train_rows"] for s in shards)
    val_rows = sum(s["val_rows"] for s in shards)
    if train_rows < config.train.micro_batch_size * config.train.num_workers:
        raise ConfigError(
            f"{config.name}: {config.data.shards} has {train_rows} {config.data.media_type} train tubelets, "
            f"fewer than one micro-batch per worker ({config.train.micro_batch_size} x {config.train.num_workers})"
        )
    frames = 1 if config.data.media_type == "image" else int(params["frames"])
    resolution = int(params["size"])
    try:
        check_input_shape(model_config, frames, resolution, resolution)
    except ValueError as err:
        raise ConfigError(f"{config.name}: {err}") from None
    stats = model_stats(model_config, frames, resolution, resolution)
    return RunPlan(config, frames, resolution, stats, train_rows=train_rows, val_rows=val_rows)


def _endless_batches(shard, batch_size: int, shuffle_buffer: int) -> Iterator[torch.Tensor]:
    """Epoch after epoch over this worker's shard of the train split, as uint8 pixel batches."""
    while True:
        for batch in shard.iter_torch_batches(
            batch_size=batch_size, local_shuffle_buffer_size=shuffle_buffer or None, drop_last=True
        ):
            yield batch["pixels"]


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker. Rank 0 alone talks to MLflow."""
    config = TrainConfig.from_dict(loop_config["config"])
    t = config.train
    # DeepSpeed picks its accelerator when it is first imported; on CPU workers it must be told.
    os.environ.setdefault("DS_ACCELERATOR", "cuda" if t.use_gpu else "cpu")
    import deepspeed

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(t.threads_per_worker or max(1, (os.cpu_count() or 1) // world))
    device = torch.device("cuda", torch.cuda.current_device()) if t.use_gpu else torch.device("cpu")
    torch.manual_seed(t.seed)  # the same initial weights on every rank

    model = ViTok.from_name(config.model.variant, channels=config.model.channels)
    optimizer, schedule = build_optimizer(model, config)
    engine, _, _, _ = deepspeed.initialize(
        model=model,
        optimizer=optimizer,
        lr_scheduler=schedule,
        config=deepspeed_config(config, world),
    )
    logger = RunLogger(loop_config["tracking_uri"], loop_config["run_id"]) if rank == 0 else None

    batches = _endless_batches(
        ray.train.get_dataset_shard("train"), t.micro_batch_size, config.data.shuffle_buffer
    )
    data_wait = 0.0
    window_start = time.perf_counter()
    for step in range(1, t.steps + 1):
        for _ in range(t.grad_accum):
            wait_start = time.perf_counter()
            pixels = next(batches)
            data_wait += time.perf_counter() - wait_start
            x = pixels_to_model_input(pixels, device)
            terms = stage1_loss(engine(x), x, beta=config.optim.kl_beta, l1_weight=config.optim.l1_weight)
            engine.backward(terms["loss"])
            engine.step()  # DeepSpeed steps the optimiser at the accumulation boundary only
        if logger is not None and (step % t.log_every == 0 or step == t.steps):
            elapsed = time.perf_counter() - window_start
            steps_in_window = t.log_every if step % t.log_every == 0 else step % t.log_every
            values = {f"train_{k}": v.item() for k, v in terms.items()}  # host sync on logging steps only
            values["lr"] = schedule.get_last_lr()[0]
            values["samples_per_s"] = steps_in_window * t.global_batch_size / elapsed
            values["data_wait_fraction"] = data_wait / elapsed
            grad_norm = engine.get_global_grad_norm()
            if grad_norm is not None:
                values["grad_norm"] = float(grad_norm)
            logger.metrics(values, step)
        if step % t.log_every == 0:
            data_wait, window_start = 0.0, time.perf_counter()

    metrics, grid = {}, None
    val_shard = ray.train.get_dataset_shard("val") if loop_config["has_val"] else None
    if val_shard is not None:
        engine.eval()
        val_batches = (b["pixels"] for b in val_shard.iter_torch_batches(batch_size=t.micro_batch_size))
        metrics, grid = evaluate(lambda x: engine(x, sample=False).recon, val_batches, t.eval_samples, device)
    if logger is not None:
        logger.metrics(metrics, t.steps)
        if grid is not None:
            logger.image(grid, "reconstructions/final.png")
        logger.finish()
    ray.train.report(metrics)  # every rank reports once: a barrier before the workers exit


def training_datasets(plan: RunPlan) -> dict[str, ray.data.Dataset]:
    """The train split (and val, when the shards have one) as pixel-only Ray Datasets."""
    config = plan.config
    ray.data.DataContext.get_current().enable_progress_bars = False  # the trainer logs its own progress

    def split(name: str) -> ray.data.Dataset:
        ds = read_tubelets(config.data.shards, media_type=config.data.media_type, split=name)
        return ds.select_columns(["pixels"])

    train = split("train")
    split_bytes = plan.train_rows * plan.frames * plan.resolution**2 * 3
    samples_needed = config.train.steps * config.train.global_batch_size
    repeats = -(-samples_needed // plan.train_rows) + 1  # +1: drop_last leaves a partial batch per worker
    if repeats > 1 and split_bytes <= config.data.cache_max_bytes:
        train = train.materialize()
        train = train.union(*([train] * (repeats - 1)))
    datasets = {"train": train}
    if plan.val_rows > 0:
        datasets["val"] = split("val")
    return datasets


def run_training(
    plan: RunPlan,
    tracking_uri: str,
    experiment_id: str,
    parent_run_id: str | None = None,
    tags: dict[str, str] | None = None,
    storage_path: str | None = None,
) -> dict[str, Any]:
    """Trains and evaluates one config; returns the MLflow run id, its final metrics and the wall time."""
    config = plan.config
    client = MlflowClient(tracking_uri)
    run_id = create_run(client, experiment_id, config.name, tags=tags, parent_run_id=parent_run_id)
    log_params(client, run_id, plan.params())

    datasets = training_datasets(plan)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "config": config.to_dict(),
            "tracking_uri": tracking_uri,
            "run_id": run_id,
            "has_val": plan.val_rows > 0,
        },
        scaling_config=ScalingConfig(num_workers=config.train.num_workers, use_gpu=config.train.use_gpu),
        run_config=RunConfig(name=f"{config.name}-{run_id[:8]}", storage_path=storage_path),
        datasets=datasets,
        # Each worker streams its own part of the train split; every worker sees all of val, so that
        # a ZeRO-3 model can run its collective forward passes in lockstep during evaluation.
        dataset_config=DataConfig(datasets_to_split=["train"]),
    )
    start = time.perf_counter()
    try:
        trainer.fit()
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    wall = time.perf_counter() - start
    metrics = client.get_run(run_id).data.metrics
    client.log_metric(run_id, "wall_time_s", wall)
    return {"run_id": run_id, "metrics": metrics, "wall_time_s": wall}


def main(argv: list[str] | None = None) -> int:

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="workflows/configs/smoke.yaml", help="sweep YAML file")
    parser.add_argument("--run", required=True, help="name of the run in the sweep file to train")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite ./mlflow.db)")
    args = parser.parse_args(argv)
    try:
        sweep = load_sweep(args.config)
        matches = [c for c in sweep.configs if c.name == args.run]
        if not matches:
            raise ConfigError(f"{args.config}: no run named '{args.run}' (runs: {', '.join(c.name for c in sweep.configs)})")
        plan = plan_run(matches[0])
    except (ConfigError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    tracking_uri, experiment_id = prepare_tracking(args.tracking_uri, sweep.experiment)
    connect_ray()
    result = run_training(plan, tracking_uri, experiment_id)
    print({k: v for k, v in result["metrics"].items() if k.startswith("eval_")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
