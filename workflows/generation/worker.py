"""A generator run on one Ray Train worker (the engine's `RunState`): DDP over a DiT trained with flow matching
on normalised latents, its part of each checkpoint, then the export and the N samples (each rank its share),
their metrics and the samples grid. The engine (workflows/runs/worker.py) drives it; rank 0 alone talks to MLflow.

DDP rather than DeepSpeed: a DiT up to XL (675M parameters, about 11 GB with fp32 AdamW state) fits one GPU,
so ZeRO's sharding buys nothing, while DDP's checkpoints are plain state dicts that load at any world size
(a ZeRO checkpoint does not) and CPU runs skip DeepSpeed's one-off build of its communication op.

Precision: in bf16 mode the weights, the optimiser and the loss stay fp32 and the forward passes (training,
sampling, the tokenizer's decoder) run under bf16 autocast, on CPU and GPU alike.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import ray
import ray.train
import ray.train.torch
import torch

from vitok import ViTok
from vitok.checkpoint import save_checkpoint
from vitok.generation import DiT, flow_matching_loss
from workflows.generation.ema import WeightAverage
from workflows.generation.grid import samples_grid
from workflows.generation.ingest import LABEL
from workflows.generation.metrics import generation_metrics
from workflows.generation.plan import GenerationPlan
from workflows.generation.sampling import gather_on_rank0, generate, precision_context, share
from workflows.latents.manifest import STATS
from workflows.latents.schema import LATENT
from workflows.runs.rng import rank_seed
from workflows.runs.spec import RunState, SaveFinal, WorkerContext

SAMPLING_FILE = "generation.json"  # in the export, beside the DiT: how its samples are turned into pixels
STATE_FILE = "generator_state.pt"  # rank 0's part of a checkpoint: the DiT, the optimiser, the schedule, the EMA


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


class GeneratorState(RunState):
    """One rank's generator training: the DiT (under DDP when there are several workers), AdamW with warm-up,
    the EMA of the weights, and the stream of flow times, noise and label dropout."""

    def __init__(self, plan: GenerationPlan, tokenizer: dict[str, Any], classes: tuple[int, ...],
                 context: WorkerContext):  # fmt: skip
        self.plan, self.tokenizer, self.classes = plan, tokenizer, classes
        self.rank, self.world, self.logger = context.rank, context.world, context.logger
        self.dataset = context.dataset
        c = plan.config
        self.device = ray.train.torch.get_device() if c.use_gpu else torch.device("cpu")
        self.dit = DiT(plan.dit_config).to(self.device)
        self.optimizer = torch.optim.AdamW(self.dit.parameters(), lr=c.lr, betas=(0.9, 0.999),
                                           weight_decay=c.weight_decay)  # fmt: skip
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                          lambda step: warmup_constant(step, c.warmup_steps))
        self.ema = WeightAverage(self.dit, c.ema_decay) if c.ema_decay else None
        self.stream = torch.Generator(self.device).manual_seed(rank_seed(c.seed, self.rank))
        # DDP when world > 1. A checkpoint loaded later copies into these same parameters.
        self.model = ray.train.torch.prepare_model(self.dit, move_to_device=False)

    def step(self, step: int, batches: Iterator[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        c, batch = self.plan.config, next(batches)
        x0 = self.plan.stats.normalize(batch[LATENT].to(self.device), c.normalization)
        labels = batch[LABEL].to(self.device) if LABEL in batch else None
        with precision_context(self.device, c.precision):
            loss = flow_matching_loss(self.model, x0, labels, self.plan.dit_config.null_class, c.class_dropout,
                                      generator=self.stream)  # fmt: skip
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()
        if self.ema is not None:
            self.ema.update(self.dit)
        return {"loss": loss.detach()}

    def step_metrics(self, step: int) -> dict[str, float]:
        return {"lr": self.schedule.get_last_lr()[0]}

    def save(self, folder: Path, rank: int) -> None:
        """Rank 0 alone: under DDP every rank holds the same state. Loads at any number of workers."""
        if rank == 0:
            torch.save({"model": self.dit.state_dict(), "optimizer": self.optimizer.state_dict(),
                        "schedule": self.schedule.state_dict(), "ema": self.ema.state if self.ema is not None else None},
                       folder / STATE_FILE)  # fmt: skip

    def load(self, folder: Path, rank: int) -> None:
        state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
        self.dit.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.ema is not None:
            device = next(iter(self.ema.state.values())).device
            self.ema.state = {k: v.to(device) for k, v in state["ema"].items()}

    def finish(self, start_step: int, save_final: SaveFinal) -> None:
        """Exports the final weights (the EMA when there is one, else the trained ones), then every rank samples
        its share, decoded by the tokenizer, and rank 0 scores them all against the held-out reals."""
        plan, c, device, logger = self.plan, self.plan.config, self.device, self.logger
        final = self.ema.state if self.ema is not None else self.dit.state_dict()
        which = "ema" if self.ema is not None else "raw"
        if start_step < c.steps:  # a run resumed from its final checkpoint has already saved and exported it

            def export(folder: Path) -> None:
                save_checkpoint(folder, plan.dit_config.to_dict(), final)
                plan.stats.save(folder / STATS)
                (folder / SAMPLING_FILE).write_text(json.dumps(sampling_description(plan, self.classes, which),
                                                               indent=1) + "\n")  # fmt: skip
                logger.folder(folder, "model")

            save_final({}, export)

        sampler = DiT(plan.dit_config).to(device)
        sampler.load_state_dict(final)
        sampler.eval()
        tokenizer = ViTok.from_files(ray.get(self.tokenizer["files"]), device)
        start = time.perf_counter()
        mine = generate(sampler, tokenizer, plan.stats, share(plan.samples, self.rank, self.world), self.classes,
                        plan.latent_shape, normalization=c.normalization, method=c.sampler, steps=c.sample_steps,
                        cfg_scale=plan.cfg_applied, seed=c.seed, batch_size=c.micro_batch_size,
                        precision=c.precision, device=device)  # fmt: skip
        samples = gather_on_rank0(mine, self.rank, self.world)
        if logger is None:
            return
        sample_seconds = time.perf_counter() - start
        reals = (b["pixels"] for b in self.dataset("reference").iter_torch_batches(
            batch_size=c.micro_batch_size))  # fmt: skip
        results = generation_metrics(samples, reals, plan.feature_networks, c.seed, c.micro_batch_size, device)
        results["sample_seconds"] = sample_seconds
        logger.image(samples_grid(samples), "samples/final.png")
        logger.tags({"eval_weights": which})
        logger.metrics(results, c.steps)
