"""A tokenizer run on one Ray Train worker (the engine's `RunState`): a DeepSpeed engine over ViTok, the
training steps of one stage, its part of each checkpoint, the held-out evaluation and the export.
The engine (workflows/runs/worker.py) drives it; rank 0 alone talks to MLflow.

DeepSpeed picks its accelerator when first imported, which is this module's import (weights.py imports it):
the node's GPU where it has one, else the CPU; DS_ACCELERATOR in the job's environment overrides that.

Precision: in bf16 mode the engine holds bf16 weights and the model gets bf16 inputs, while the training
target, every loss, the fp32 networks beside the engine (LPIPS, the discriminator, feature networks), the
metrics and the exported weights stay fp32. The same path runs on CPU workers and on GPUs.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import load_file, save_file

from vitok import ViTok
from vitok.checkpoint import save_checkpoint
from vitok.fid import load_i3d, load_inception
from vitok.visualize import reconstruction_grid
from workflows.config import TrainConfig
from workflows.runs.rng import rank_seed
from workflows.runs.spec import RunState, SaveFinal, WorkerContext
from workflows.tracking import PER_SAMPLE_ARTIFACT
from workflows.training.deepspeed_config import deepspeed_config, tune_engine
from workflows.training.evaluation import ValBatch, eval_group, evaluate, pixels_to_model_input
from workflows.training.ingest import augment, center_crop
from workflows.training.jit_build import settle_build_locks, use_the_environments_ninja
from workflows.training.model_card import CARD_NAME, model_card
from workflows.training.objectives import Objective
from workflows.training.optim import build_optimizer
from workflows.training.plan import RunPlan
from workflows.training.weights import WeightEMA, fp32_parameters, master_state, start_masters_at

ENGINE_TAG = "engine"  # DeepSpeed's folder inside a checkpoint
EMA_FILE = "ema.safetensors"
RAW_EXPORT_DIR = "raw"  # inside the export, when it holds EMA weights: the raw weights, loadable alike


def build_model(plan: RunPlan) -> ViTok:
    """Fresh weights (the same on every rank: the seed is set first), or the export the plan resolved
    (`train.init_from`, in fp32); the encoder frozen with `train.freeze: encoder` (stage 2's default)."""
    t = plan.config.train
    if not t.init_from:
        model = ViTok(plan.model_config)
    else:
        model = ViTok.from_pretrained(t.init_from, dtype=torch.float32)
        model.train()
    if t.freeze == "encoder":
        model.freeze_encoder()
    return model.set_activation_checkpointing(plan.config.train.activation_checkpointing)


def build_engine(config: TrainConfig, model: ViTok, device: torch.device, world: int):
    """(DeepSpeed's engine over `model`, its lr schedule, the frozen parameters' fp32 values), with the engine's
    fp32 masters starting at the model's exact fp32 weights, not at the bf16 copies DeepSpeed makes of them.
    Needs torch.distributed set up (Ray Train does it)."""
    import deepspeed

    use_the_environments_ninja()  # else a driver's PATH picks the ninja, and two ninjas rebuild the op in turn
    settle_build_locks()  # else a lock left by a killed build makes deepspeed.initialize wait forever
    weights = fp32_parameters(model)
    optimizer, schedule = build_optimizer(model, config, device)
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=schedule, config=deepspeed_config(config, world)
    )
    tune_engine(engine, config, world)
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


class TokenizerState(RunState):
    """One rank's tokenizer training: the DeepSpeed engine, the objective (and its discriminator), the EMA of
    the weights and the augmentation stream."""

    def __init__(self, plan: RunPlan, context: WorkerContext):
        self.plan, self.rank, self.world, self.logger = plan, context.rank, context.world, context.logger
        self.dataset = context.dataset
        config, t = plan.config, plan.config.train
        self.device = torch.device("cuda", torch.cuda.current_device()) if t.use_gpu else torch.device("cpu")
        if t.precision == "bf16" and self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise RuntimeError(f"train.precision bf16: {torch.cuda.get_device_name(self.device)} has no bf16; use fp32")
        self.model_dtype = torch.bfloat16 if t.precision == "bf16" else torch.float32
        self.engine, self.schedule, self.frozen = build_engine(config, build_model(plan), self.device, self.world)
        if t.compile:
            self.engine.compile()
        self.objective = Objective(config, self.device, self.world)
        self.ema = WeightEMA(t.ema_decay, self.engine, self.frozen, t.zero_stage) if t.ema_decay else None
        # Each rank its own bottleneck noise (the engine seeds it) and augmentation stream.
        self.stream = torch.Generator().manual_seed(rank_seed(t.seed, self.rank) + 10_000_000)

    def masters(self) -> dict[str, torch.Tensor]:
        return master_state(self.engine, self.frozen, self.plan.config.train.zero_stage)

    def step(self, step: int, batches: Iterator[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        config, t = self.plan.config, self.plan.config.train
        terms: dict[str, torch.Tensor] = {}
        for _ in range(t.grad_accum):
            pixels = augment(next(batches)["pixels"], config.data.crop, config.data.flip, self.stream)
            target = pixels_to_model_input(pixels, self.device)  # fp32: the loss compares against exact pixels
            output = self.engine(target.to(self.model_dtype))
            terms = self.objective.generator_terms(output, target, step)
            self.engine.backward(terms["loss"])
            self.engine.step()  # DeepSpeed steps the optimiser at the accumulation boundary only
            terms.update(self.objective.discriminator_backward(target, output.recon.detach(), step))
        self.objective.discriminator_step(step)
        if self.ema is not None:
            self.ema.update()
        if self.logger is not None and t.grid_every and step % t.grid_every == 0:
            self.logger.image(reconstruction_grid(target, output.recon.float().clamp(-1, 1)),
                              f"reconstructions/step_{step:07d}.png")  # fmt: skip
        return terms

    def step_metrics(self, step: int) -> dict[str, float]:
        values = {"lr": self.schedule.get_last_lr()[0]}
        if self.objective.disc is not None:
            values["gan_weight"] = self.objective.gan_weight(step)
        grad_norm = self.engine.get_global_grad_norm()
        if grad_norm is not None:
            values["grad_norm"] = float(grad_norm)
        return values

    def save(self, folder: Path, rank: int) -> None:
        """The engine (weights, fp32 masters, optimiser and schedule) on every rank, since DeepSpeed's save is a
        collective, as is gathering the EMA; the objective's state (the discriminator) and the EMA on rank 0."""
        self.engine.save_checkpoint(str(folder), tag=ENGINE_TAG)
        average = self.ema.full_state() if self.ema is not None else None
        if rank == 0:
            self.objective.save(folder)
            if average is not None:
                save_file({k: v.contiguous() for k, v in average.items()}, str(folder / EMA_FILE))

    def load(self, folder: Path, rank: int) -> None:
        self.engine.load_checkpoint(str(folder), tag=ENGINE_TAG)
        self.objective.load(folder)
        if self.ema is not None and (folder / EMA_FILE).is_file():
            self.ema.load_full_state(load_file(str(folder / EMA_FILE)))

    def finish(self, start_step: int, save_final: SaveFinal) -> None:
        """Evaluates the final weights (the EMA when there is one, else the fp32 masters) on the held-out split,
        saves the final checkpoint with the export and, on rank 0, logs the results."""
        config, t, device, logger = self.plan.config, self.plan.config.train, self.device, self.logger
        raw = self.masters()
        final = self.ema.full_state() if self.ema is not None else raw
        results, grid, samples = {}, None, None
        if self.plan.val_rows > 0:
            evaluated = ViTok(self.engine.module.config).to(device)
            evaluated.load_state_dict(final)
            evaluated.eval()

            def reconstruct(x: torch.Tensor) -> torch.Tensor:
                with inference_autocast(device, t.precision):
                    return evaluated(x, sample=False).recon

            val = self.dataset("val").iter_batches(batch_size=t.micro_batch_size, batch_format="numpy")
            results, grid, samples = evaluate(
                reconstruct, (validation_batch(b, config) for b in val), t.eval_samples,
                batch_size=t.micro_batch_size, device=device, lpips=self.objective.lpips,
                feature_nets=feature_networks(config, device), rank=self.rank, world=self.world,
            )
            del evaluated
        model_config = self.engine.module.config.to_dict()

        weights = "ema" if self.ema is not None else "raw"

        def export(folder: Path) -> None:
            save_checkpoint(folder, model_config, final)
            if self.ema is not None:
                save_checkpoint(folder / RAW_EXPORT_DIR, model_config, raw)
            card = model_card(self.plan, results, logger.run_id, logger.tracking_uri, weights)
            (folder / CARD_NAME).write_text(card)
            logger.folder(folder, "model")

        save_final(results, export)
        if logger is not None:
            logger.tags({"eval_weights": weights})
            logger.metrics(results, t.steps)
            if grid is not None:
                logger.image(grid, "reconstructions/final.png")
            if samples is not None:
                logger.json(samples, PER_SAMPLE_ARTIFACT)
