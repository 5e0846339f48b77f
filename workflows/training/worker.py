"""The function every Ray Train worker runs: a DeepSpeed engine over ViTok, the training steps of one stage,
checkpoints that a restarted worker group resumes from exactly, the held-out evaluation and the export.
Rank 0 alone talks to MLflow.

DeepSpeed picks its accelerator when first imported, which is this module's import (weights.py imports it):
the node's GPU where it has one, else the CPU; DS_ACCELERATOR in the job's environment overrides that.

Precision: in bf16 mode the engine holds bf16 weights and the model gets bf16 inputs, while the training
target, every loss, the fp32 networks beside the engine (LPIPS, the discriminator, feature networks), the
metrics and the exported weights stay fp32. The same path runs on CPU workers and on GPUs.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import ray.train
import torch

from vitok import ViTok
from vitok.checkpoint import save_checkpoint
from vitok.fid import load_i3d, load_inception
from vitok.visualize import reconstruction_grid
from workflows.config import TrainConfig
from workflows.runtime.console import configure_console
from workflows.tracking import PER_SAMPLE_ARTIFACT, RunLogger, start_system_metrics
from workflows.training.checkpoints import RAW_EXPORT_DIR, restore_latest, save_and_report
from workflows.training.deepspeed_config import deepspeed_config
from workflows.training.evaluation import ValBatch, eval_group, evaluate, pixels_to_model_input
from workflows.training.hardware import gpu_peak_flops
from workflows.training.ingest import augment, center_crop, endless_batches
from workflows.training.objectives import Objective
from workflows.training.optim import build_optimizer
from workflows.training.plan import RunPlan
from workflows.training.rng import seed_rank
from workflows.training.weights import WeightEMA, fp32_parameters, master_state, start_masters_at


@dataclass(frozen=True)
class WorkerConfig:
    """What every Ray Train worker is handed: the run's plan, already resolved, and where to log."""

    plan: RunPlan
    tracking_uri: str
    run_id: str
    verbose: bool = False  # False: known third-party warnings are filtered in the workers too


def build_model(plan: RunPlan) -> ViTok:
    """Stage 1 starts from fresh weights (the same on every rank: the seed is set first); stage 2 from the
    stage-1 export the plan resolved (in fp32), with the encoder frozen."""
    if plan.config.train.stage == 1:
        model = ViTok(plan.model_config)
    else:
        model = ViTok.from_pretrained(plan.config.train.init_from, dtype=torch.float32)
        model.train()
        model.freeze_encoder()
    return model.set_activation_checkpointing(plan.config.train.activation_checkpointing)


def build_engine(config: TrainConfig, model: ViTok, device: torch.device, world: int):
    """(DeepSpeed's engine over `model`, its lr schedule, the frozen parameters' fp32 values), with the engine's
    fp32 masters starting at the model's exact fp32 weights, not at the bf16 copies DeepSpeed makes of them.
    Needs torch.distributed set up (Ray Train does it)."""
    import deepspeed

    weights = fp32_parameters(model)
    optimizer, schedule = build_optimizer(model, config, device)
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=schedule, config=deepspeed_config(config, world)
    )
    return engine, schedule, start_masters_at(engine, weights, config.train.zero_stage)


def feature_networks(config: TrainConfig, device: torch.device) -> dict[str, torch.nn.Module]:
    """rFID (per frame) and rFVD (per clip, video only) networks that are configured; the rest are off."""
    nets = {"eval_rfid": load_inception(config.weights.inception or None)}
    if config.data.media_type == "video":
        nets["eval_rfvd"] = load_i3d(config.weights.i3d or None)
    return {name: net.to(device).eval() for name, net in nets.items() if net is not None}


def inference_autocast(device: torch.device, precision: str):
    """bf16 autocast for the fp32 evaluation model in a bf16 run (the dtypes the engine trained in)."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def validation_batch(batch: dict, config: TrainConfig) -> ValBatch:
    """A numpy batch of the val split (pixels, sample_id, source_uri) as evaluation takes it."""
    pixels = center_crop(torch.tensor(batch["pixels"]), config.data.crop)  # a copy: Arrow's buffers are read-only
    ids, sources = [str(i) for i in batch["sample_id"]], [str(u) for u in batch["source_uri"]]
    return ValBatch(pixels, ids, [eval_group(u, i, config.data.eval_unit) for u, i in zip(sources, ids)])


def train_loop_per_worker(worker: WorkerConfig) -> None:
    plan = worker.plan
    config, t = plan.config, plan.config.train
    configure_console(worker.verbose)

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(t.threads_per_worker or max(1, (os.cpu_count() or 1) // world))
    device = torch.device("cuda", torch.cuda.current_device()) if t.use_gpu else torch.device("cpu")
    if t.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise RuntimeError(f"train.precision bf16: {torch.cuda.get_device_name(device)} has no bf16; use fp32")
    model_dtype = torch.bfloat16 if t.precision == "bf16" else torch.float32

    torch.manual_seed(t.seed)  # the same initial weights on every rank
    model = build_model(plan)
    engine, schedule, frozen = build_engine(config, model, device, world)
    if t.compile:
        engine.compile()
    objective = Objective(config, device, world)
    ema = WeightEMA(t.ema_decay, master_state(engine, frozen, t.zero_stage)) if t.ema_decay else None
    augment_rng = seed_rank(t.seed, rank)  # each rank its own noise and augmentation streams
    start_step = restore_latest(engine, rank, objective, ema, augment_rng)

    logger = RunLogger(worker.tracking_uri, worker.run_id) if rank == 0 else None
    peak_flops = gpu_peak_flops(device)
    logged_through = logger.last_step("train_loss") if logger else 0
    monitor = start_system_metrics(worker.tracking_uri, worker.run_id, interval_s=5) if logger else None
    if logger is not None:
        logger.tags({"resumed_from_step": str(start_step)})  # 0: a fresh start

    batches = endless_batches(ray.train.get_dataset_shard("train"), t.micro_batch_size, config.data.shuffle_buffer,
                              seed=t.seed * 1000 + rank, skip=start_step * t.grad_accum)
    data_wait, window_start, window_steps = 0.0, time.perf_counter(), 0
    for step in range(start_step + 1, t.steps + 1):
        terms: dict[str, torch.Tensor] = {}
        for _ in range(t.grad_accum):
            wait_start = time.perf_counter()
            pixels = augment(next(batches), config.data.crop, config.data.flip, augment_rng)
            data_wait += time.perf_counter() - wait_start
            target = pixels_to_model_input(pixels, device)  # fp32: the loss compares against exact pixels
            output = engine(target.to(model_dtype))
            terms = objective.generator_terms(output, target, step)
            engine.backward(terms["loss"])
            engine.step()  # DeepSpeed steps the optimiser at the accumulation boundary only
            terms.update(objective.discriminator_backward(target, output.recon.detach(), step))
        objective.discriminator_step(step)
        if ema is not None:
            ema.update(master_state(engine, frozen, t.zero_stage))
        window_steps += 1

        if logger is not None and (step % t.log_every == 0 or step == t.steps):
            elapsed = time.perf_counter() - window_start
            values = {f"train_{k}": float(v) for k, v in terms.items()}  # host sync on logging steps only
            values["lr"] = schedule.get_last_lr()[0]
            if objective.disc is not None:
                values["gan_weight"] = objective.gan_weight(step)
            values["samples_per_s"] = window_steps * t.global_batch_size / elapsed
            if peak_flops:  # forward + backward = 3 x forward; 2 FLOPs per multiply-accumulate
                values["mfu"] = values["samples_per_s"] * 6e9 * plan.stats.gmacs / (peak_flops * world)
            values["data_wait_fraction"] = data_wait / elapsed
            grad_norm = engine.get_global_grad_norm()
            if grad_norm is not None:
                values["grad_norm"] = float(grad_norm)
            if step > logged_through:
                logger.metrics(values, step)
            data_wait, window_start, window_steps = 0.0, time.perf_counter(), 0
        if logger is not None and t.grid_every and step % t.grid_every == 0:
            logger.image(reconstruction_grid(target, output.recon.float().clamp(-1, 1)),
                         f"reconstructions/step_{step:07d}.png")
        if t.checkpoint_every and step % t.checkpoint_every == 0 and step < t.steps:
            save_and_report(engine, step, {"step": step}, rank, objective, ema, augment_rng)

    # The weights that are evaluated and exported: the EMA when there is one, else the fp32 masters.
    raw = master_state(engine, frozen, t.zero_stage)
    final = ema.state if ema is not None else raw
    results, grid, samples = {}, None, None
    if plan.val_rows > 0:
        evaluated = ViTok(engine.module.config).to(device)
        evaluated.load_state_dict(final)
        evaluated.eval()

        def reconstruct(x: torch.Tensor) -> torch.Tensor:
            with inference_autocast(device, t.precision):
                return evaluated(x, sample=False).recon

        val = ray.train.get_dataset_shard("val").iter_batches(batch_size=t.micro_batch_size, batch_format="numpy")
        results, grid, samples = evaluate(
            reconstruct, (validation_batch(b, config) for b in val), t.eval_samples,
            batch_size=t.micro_batch_size, device=device, lpips=objective.lpips,
            feature_nets=feature_networks(config, device), rank=rank, world=world,
        )
        del evaluated

    def export(folder: Path) -> None:
        if rank == 0:
            save_checkpoint(folder, engine.module.config.to_dict(), final)
            if ema is not None:
                save_checkpoint(folder / RAW_EXPORT_DIR, engine.module.config.to_dict(), raw)
            logger.folder(folder, "model")

    save_and_report(engine, t.steps, {"step": t.steps, **results}, rank, objective, ema, augment_rng, export)
    if logger is not None:
        logger.tags({"eval_weights": "ema" if ema is not None else "raw"})
        logger.metrics(results, t.steps)
        if grid is not None:
            logger.image(grid, "reconstructions/final.png")
        if samples is not None:
            logger.json(samples, PER_SAMPLE_ARTIFACT)
        if monitor is not None:
            monitor.finish()
        logger.finish()
