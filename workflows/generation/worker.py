"""The function every Ray Train worker of a generator run runs: DDP over a DiT trained with flow matching on
normalised latents, checkpoints a restarted worker group resumes from exactly, then the N samples (each rank its
share), their metrics, the samples grid and the export. Rank 0 alone talks to MLflow.

DDP rather than DeepSpeed: a DiT up to XL (675M parameters, about 11 GB with fp32 AdamW state) fits one GPU,
so ZeRO's sharding buys nothing, while DDP's checkpoints are plain state dicts that load at any world size
(a ZeRO checkpoint does not) and CPU runs skip DeepSpeed's one-off build of its communication op.

Precision: in bf16 mode the weights, the optimiser and the loss stay fp32 and the forward passes (training,
sampling, the tokenizer's decoder) run under bf16 autocast, on CPU and GPU alike.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import ray.train
import ray.train.torch
import torch

from vitok.checkpoint import save_checkpoint
from vitok.generation import DiT, flow_matching_loss
from workflows.generation.checkpoints import restore_latest, save_and_report
from workflows.generation.ema import WeightAverage
from workflows.generation.grid import samples_grid
from workflows.generation.ingest import latent_batches
from workflows.generation.metrics import generation_metrics
from workflows.generation.plan import GenerationPlan
from workflows.generation.sampling import gather_on_rank0, generate, precision_context, share
from workflows.latents.encode import load_model
from workflows.latents.manifest import STATS
from workflows.runtime.console import configure_console
from workflows.tracking import RunLogger, start_system_metrics
from workflows.training.hardware import gpu_peak_flops
from workflows.training.rng import seed_rank

SAMPLING_FILE = "generation.json"  # in the export, beside the DiT: how its samples are turned into pixels


@dataclass(frozen=True)
class GeneratorWorkerConfig:
    """What every worker is handed: the plan, the tokenizer's files (an object-store reference in a dict, so
    Ray passes it through rather than resolving it), the train classes, and where to log."""

    plan: GenerationPlan
    tokenizer: dict[str, Any]  # {"files": ObjectRef of {file name: bytes}}
    classes: tuple[int, ...]  # the classes the train latents hold (sampling cycles through them); () unconditional
    tracking_uri: str
    run_id: str
    verbose: bool = False


def warmup_constant(step: int, warmup_steps: int) -> float:
    """Multiplier of the lr at optimiser step `step` (0-based): linear warm-up, then constant (as DiT and SiT)."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


def sampling_description(plan: GenerationPlan, classes: tuple[int, ...], weights: str) -> dict[str, Any]:
    """generation.json: what turns this DiT's outputs into pixels, for anyone sampling from the export."""
    c = plan.config
    return {"normalization": c.normalization, "latent_stats": STATS, "latent_shape": list(plan.latent_shape),
            "tokenizer": {k: plan.tokenizer[k] for k in ("reference", "variant", "weights_sha256")},
            "classes": list(classes), "sampler": c.sampler, "sample_steps": c.sample_steps,
            "cfg_scale": plan.cfg_applied, "weights": weights}  # fmt: skip


def train_loop_per_worker(worker: GeneratorWorkerConfig) -> None:
    plan, c = worker.plan, worker.plan.config
    configure_console(worker.verbose)
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(c.threads_per_worker or max(1, (os.cpu_count() or 1) // world))
    device = ray.train.torch.get_device() if c.use_gpu else torch.device("cpu")

    torch.manual_seed(c.seed)  # the same initial weights on every rank
    dit = DiT(plan.dit_config).to(device)
    optimizer = torch.optim.AdamW(dit.parameters(), lr=c.lr, betas=(0.9, 0.999), weight_decay=c.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_constant(step, c.warmup_steps))
    ema = WeightAverage(dit, c.ema_decay) if c.ema_decay else None
    seed_rank(c.seed, rank)  # torch, numpy and python streams of this rank
    noise = torch.Generator(device).manual_seed(c.seed * 1000 + rank)  # flow times, noise and label dropout
    start_step = restore_latest(dit, optimizer, schedule, ema, rank, noise)
    model = ray.train.torch.prepare_model(dit, move_to_device=False)  # DDP when world > 1

    logger = RunLogger(worker.tracking_uri, worker.run_id) if rank == 0 else None
    logged_through = logger.last_step("train_loss") if logger else 0
    monitor = start_system_metrics(worker.tracking_uri, worker.run_id, interval_s=5) if logger else None
    if logger is not None:
        logger.tags({"resumed_from_step": str(start_step)})  # 0: a fresh start
    peak_flops = gpu_peak_flops(device)
    stats, null_class = plan.stats, plan.dit_config.null_class

    batches = latent_batches(ray.train.get_dataset_shard("train"), c.micro_batch_size, c.shuffle_buffer,
                             seed=c.seed * 1000 + rank, skip=start_step)  # fmt: skip
    window_start, window_steps = time.perf_counter(), 0
    for step in range(start_step + 1, c.steps + 1):
        latents, labels = next(batches)
        x0 = stats.normalize(latents.to(device), c.normalization)
        labels = labels.to(device) if labels is not None else None
        with precision_context(device, c.precision):
            loss = flow_matching_loss(model, x0, labels, null_class, c.class_dropout, generator=noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if ema is not None:
            ema.update(dit)
        window_steps += 1
        if logger is not None and (step % c.log_every == 0 or step == c.steps):
            elapsed = time.perf_counter() - window_start
            values = {"train_loss": float(loss.detach()), "lr": schedule.get_last_lr()[0],
                      "samples_per_s": window_steps * c.global_batch_size / elapsed}  # fmt: skip
            if peak_flops:  # forward + backward = 3 x forward; 2 FLOPs per multiply-accumulate
                values["mfu"] = values["samples_per_s"] * 6e9 * plan.dit_stats.gmacs / (peak_flops * world)
            if step > logged_through:  # steps redone after a restart were logged by the lost attempt
                logger.metrics(values, step)
            window_start, window_steps = time.perf_counter(), 0
        if c.checkpoint_every and step % c.checkpoint_every == 0 and step < c.steps:
            save_and_report(dit, optimizer, schedule, ema, step, rank, noise)

    # The weights that are sampled and exported: the EMA when there is one, else the trained weights.
    final = ema.state if ema is not None else dit.state_dict()
    which = "ema" if ema is not None else "raw"
    if start_step < c.steps:  # a run resumed from its final checkpoint has already saved and exported it

        def export(folder: Path) -> None:
            save_checkpoint(folder, plan.dit_config.to_dict(), final)
            plan.stats.save(folder / STATS)
            (folder / SAMPLING_FILE).write_text(json.dumps(sampling_description(plan, worker.classes, which),
                                                           indent=1) + "\n")  # fmt: skip
            logger.folder(folder, "model")

        save_and_report(dit, optimizer, schedule, ema, c.steps, rank, noise, export)

    sampler = DiT(plan.dit_config).to(device)
    sampler.load_state_dict(final)
    sampler.eval()
    tokenizer = load_model(ray.get(worker.tokenizer["files"]), device)
    start = time.perf_counter()
    mine = generate(sampler, tokenizer, stats, share(plan.samples, rank, world), worker.classes, plan.latent_shape,
                    normalization=c.normalization, method=c.sampler, steps=c.sample_steps, cfg_scale=plan.cfg_applied,
                    seed=c.seed, batch_size=c.micro_batch_size, precision=c.precision, device=device)  # fmt: skip
    samples = gather_on_rank0(mine, rank, world)
    if logger is None:
        return
    sample_seconds = time.perf_counter() - start
    reals = (b["pixels"] for b in ray.train.get_dataset_shard("reference").iter_torch_batches(
        batch_size=c.micro_batch_size))  # fmt: skip
    results = generation_metrics(samples, reals, plan.feature_networks, c.seed, c.micro_batch_size, device)
    results["sample_seconds"] = sample_seconds
    logger.image(samples_grid(samples), "samples/final.png")
    logger.tags({"eval_weights": which})
    logger.metrics(results, c.steps)
    if monitor is not None:
        monitor.finish()
    logger.finish()
