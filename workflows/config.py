"""Typed training configuration, validated at the edge.

A `TrainConfig` is built from a nested dict (a YAML sweep's `base` deep-merged with one run's overrides).
Unknown keys, wrong types and impossible values raise `ConfigError` with one line that names the key,
before any Ray, DeepSpeed or MLflow work starts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from workflows.runtime.precision import resolve_precision


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the key and the reason."""


@dataclass
class ModelSection:
    variant: str = "N-N/8"  # `{Enc}-{Dec}/{q}x{p}` or `{Enc}-{Dec}/{p}`, see vitok.config
    channels: int = 8  # c: latent channels per token; E = L x c


EVAL_UNITS = ("source", "folder", "sample")


@dataclass
class DataSection:
    shards: str = "work/shards"  # output folder of `python -m data_prep run`
    media_type: str = "image"  # which shards to train on: "image" (T=1) or "video" (T frames)
    shuffle_buffer: int = 64  # rows in each worker's local shuffle buffer
    crop: int = 0  # random crop side in training, centre crop at eval (0: the whole tubelet)
    flip: bool = False  # random horizontal flip in training
    # Train splits up to this many bytes are materialised once and repeated so that one Ray Data epoch
    # covers the whole run: on small corpora the per-epoch start-up would otherwise cost more than a step.
    cache_max_bytes: int = 1 << 30
    # The independent unit of the validation set, which the bootstrap intervals resample as one: "source"
    # (each source file: the clips of one video together), "folder" (each source file's folder: the sample
    # corpus's scenes, whose crops are separate files) or "sample" (each tubelet alone).
    eval_unit: str = "source"


DEFAULT_WARMUP_STEPS = 10


@dataclass
class OptimSection:
    base_lr: float = 1e-4  # peak lr per 256 samples of global batch (the paper's rule: lr = base_lr x batch / 256)
    # Linear warm-up, then cosine decay to 0 at the last step. Unset: DEFAULT_WARMUP_STEPS, at most half of
    # train.steps (TrainConfig.from_dict), so a short run such as `steps: 10` needs no warm-up of its own.
    warmup_steps: int = DEFAULT_WARMUP_STEPS
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0  # DeepSpeed `gradient_clipping` (applied after backward, inside engine.step)
    fused_adamw: bool = True  # PyTorch's fused AdamW kernel (CPU and GPU); false: its per-tensor AdamW
    kl_beta: float = 1e-3  # beta of the KL term (paper Eq. 1)
    l1_weight: float = 0.0  # optional L1 reconstruction term
    lpips_weight: float = 0.0  # eta: LPIPS weight (paper: 1.0); needs weights.lpips, else LPIPS is off
    gan_weight: float = 0.0  # lambda: generator GAN weight in stage 2 (paper's ablation: 0.05)
    disc_lr: float = 2e-5  # discriminator learning rate (stage 2)
    gan_start_step: int = 0  # stage-2 step at which the GAN term starts
    gan_warmup_steps: int = 0  # linear ramp of the GAN weight after its start
    disc_r1_weight: float = 0.0  # gamma of the discriminator's R1 penalty on real pixels (0: off)


@dataclass
class TrainSection:
    steps: int = 60  # optimiser steps
    micro_batch_size: int = 8  # per worker, per micro-step
    grad_accum: int = 1  # micro-steps per optimiser step
    num_workers: int = 2  # Ray Train workers (data-parallel world size)
    # How Ray places the workers: PACK fills a node first (fast collectives); SPREAD puts them on as many
    # nodes as it can (a lost node then costs fewer workers). Both fall back on any node with room.
    placement: str = "PACK"
    use_gpu: bool = False
    # DeepSpeed ZeRO stage 0-3, or "auto": 0 for one worker (nothing to partition, the fastest step), else 2.
    # Resolved to an int when the section is built, so everything downstream (and the logged params) sees
    # the stage that runs.
    zero_stage: int | str = "auto"
    # bf16: DeepSpeed's bf16 mode (bf16 weights and activations, fp32 master weights, losses and metrics in
    # fp32), on GPU and on CPU alike; fp32: everything in fp32; auto: bf16 where this machine computes it
    # natively (GPUs, CPUs with AVX512-BF16 or AMX), else fp32 (runtime/precision.py). Resolved when the
    # section is built, so the logged param is the precision that runs.
    precision: str = "auto"
    ema_decay: float = 0.0  # EMA of the weights per optimiser step (paper stage 2: 0.9999); 0: no EMA
    compile: bool = False  # torch.compile the model (DeepSpeed's engine.compile)
    activation_checkpointing: bool = False  # recompute each transformer block in the backward pass
    seed: int = 0
    log_every: int = 10  # steps between logged metrics (losses are synced to the host only then)
    eval_samples: int = 64  # held-out samples used for the final PSNR/SSIM
    threads_per_worker: int = 0  # torch intra-op threads per worker; 0 = cores / workers
    stage: int = 1  # 1: MSE + LPIPS + KL; 2: encoder frozen, decoder + GAN discriminator
    # An exported tokenizer to start from (a folder or s3:// URI with model.safetensors + config.json; train.py
    # also takes runs:/ and models:/): required at stage 2; at stage 1 a fine-tune. The model is the export's,
    # whatever model.variant says. Empty: fresh weights.
    init_from: str = ""
    # What stays fixed: "encoder" (decoder-only training: the latent space, cached latents and generators
    # trained on them stay valid) or "none". Unset: "encoder" at stage 2, "none" at stage 1.
    freeze: str = ""
    checkpoint_every: int = 100  # steps between DeepSpeed checkpoints (0: only at the end)
    keep_checkpoints: int = 2  # Ray Train keeps this many latest checkpoints
    max_failures: int = 0  # worker-group restarts Ray Train may make; each resumes from the last checkpoint
    grid_every: int = 0  # steps between reconstruction grids logged to MLflow (0: the final one only)
    export_to: str = ""  # also copy the final export (model.safetensors + config.json) here: folder or s3://

    def __post_init__(self) -> None:
        if not self.freeze:
            self.freeze = "encoder" if self.stage == 2 else "none"
        self.precision = resolve_precision(self.precision, self.use_gpu)
        if self.zero_stage == "auto":
            # Stage 0 cannot accumulate bf16 gradients in fp32 (see validate), stage 2 can.
            self.zero_stage = 0 if self.num_workers == 1 and not self.accumulates_bf16 else 2

    @property
    def accumulates_bf16(self) -> bool:
        """Whether micro-steps of bf16 gradients are summed before each optimiser step."""
        return self.grad_accum > 1 and self.precision == "bf16"

    @property
    def global_batch_size(self) -> int:
        return self.micro_batch_size * self.grad_accum * self.num_workers


@dataclass
class WeightsSection:
    """Pretrained networks, from a local path or s3:// URI. Empty: that loss term or metric is off and the
    run records it as off; nothing is downloaded and no metric is ever faked."""

    lpips: str = ""  # VGG16 + LPIPS heads (vitok.lpips layout)
    inception: str = ""  # InceptionV3 FID feature extractor, TorchScript (rFID)
    i3d: str = ""  # I3D feature extractor, TorchScript (rFVD, video only)


class ValidatedConfig:
    """Built from a nested dict with every key and type checked (`_build`), then the config's own `validate`;
    `where` (default: the class's `SOURCE`) names the input in the one-line errors."""

    SOURCE = "config"

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str | None = None):
        where = where or cls.SOURCE
        config = _build(cls, raw, where)
        config.validate(where)
        return config


@dataclass
class TrainConfig(ValidatedConfig):
    name: str = "run"  # run name; also the Ray Train run name and the MLflow child run name
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    weights: WeightsSection = field(default_factory=WeightsSection)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str | None = None) -> "TrainConfig":
        """As ValidatedConfig's, with an unset optim.warmup_steps scaled to short runs: min(10, steps // 2),
        which is 10 for every run of 20 steps or more (all the shipped configs set their own anyway)."""
        where = where or cls.SOURCE
        config = _build(cls, raw, where)
        optim = raw.get("optim")
        if not (isinstance(optim, dict) and "warmup_steps" in optim):
            config.optim.warmup_steps = min(DEFAULT_WARMUP_STEPS, config.train.steps // 2)
        config.validate(where)
        return config

    def flat(self) -> dict[str, Any]:
        """`section.key` -> value, the form logged as MLflow params."""
        out: dict[str, Any] = {"name": self.name}
        for section in ("model", "data", "optim", "train", "weights"):
            for key, value in dataclasses.asdict(getattr(self, section)).items():
                out[f"{section}.{key}"] = value
        return out

    @property
    def peak_lr(self) -> float:
        return self.optim.base_lr * self.train.global_batch_size / 256

    def validate(self, where: str = "config") -> None:
        """Checks that need no I/O. The variant and the data folder are checked by the caller."""
        t, o = self.train, self.optim
        checks = [
            (self.data.media_type in ("image", "video"), "data.media_type", "must be 'image' or 'video'"),
            (self.model.channels >= 1, "model.channels", "must be >= 1"),
            (t.steps >= 1, "train.steps", "must be >= 1"),
            (t.micro_batch_size >= 1, "train.micro_batch_size", "must be >= 1"),
            (t.grad_accum >= 1, "train.grad_accum", "must be >= 1"),
            (t.num_workers >= 1, "train.num_workers", "must be >= 1"),
            (t.zero_stage in (0, 1, 2, 3), "train.zero_stage", "must be 0, 1, 2, 3 or 'auto'"),
            (t.zero_stage not in (0, 1) or not t.accumulates_bf16, "train.zero_stage",
             f"{t.zero_stage} cannot accumulate bf16 gradients in fp32 (train.grad_accum > 1); use 2, 3 or 'auto'"),
            (t.precision in ("bf16", "fp32"), "train.precision", "must be 'bf16', 'fp32' or 'auto'"),
            (t.placement in ("PACK", "SPREAD"), "train.placement", "must be 'PACK' or 'SPREAD'"),
            (0.0 <= t.ema_decay < 1.0, "train.ema_decay", "must be in [0, 1)"),
            (o.disc_r1_weight >= 0, "optim.disc_r1_weight", "must be >= 0"),
            (t.log_every >= 1, "train.log_every", "must be >= 1"),
            (t.eval_samples >= 1, "train.eval_samples", "must be >= 1"),
            (t.threads_per_worker >= 0, "train.threads_per_worker", "must be >= 0"),
            (self.data.shuffle_buffer >= 0, "data.shuffle_buffer", "must be >= 0"),
            (self.data.crop >= 0, "data.crop", "must be >= 0"),
            (self.data.cache_max_bytes >= 0, "data.cache_max_bytes", "must be >= 0"),
            (self.data.eval_unit in EVAL_UNITS, "data.eval_unit", "must be 'source', 'folder' or 'sample'"),
            (o.base_lr > 0, "optim.base_lr", "must be > 0"),
            (0 <= o.warmup_steps < t.steps, "optim.warmup_steps", "must be in [0, train.steps)"),
            (o.grad_clip >= 0, "optim.grad_clip", "must be >= 0 (0 disables clipping)"),
            (min(o.kl_beta, o.l1_weight, o.lpips_weight, o.gan_weight) >= 0, "optim", "loss weights must be >= 0"),
            (o.disc_lr > 0, "optim.disc_lr", "must be > 0"),
            (min(o.gan_start_step, o.gan_warmup_steps) >= 0, "optim", "GAN start and warm-up must be >= 0"),
            (t.stage in (1, 2), "train.stage", "must be 1 or 2"),
            (t.stage == 1 or bool(t.init_from), "train.init_from", "is required for stage 2 (a stage-1 export)"),
            (t.freeze in ("encoder", "none"), "train.freeze", "must be 'encoder' or 'none'"),
            (t.freeze == "none" or bool(t.init_from), "train.freeze",
             "'encoder' needs train.init_from (a fresh encoder would stay random)"),
            (t.stage == 2 or o.gan_weight == 0, "optim.gan_weight", "is a stage-2 term; set train.stage: 2"),
            (min(t.checkpoint_every, t.max_failures, t.grid_every) >= 0, "train", "checkpoint_every, "
             "max_failures and grid_every must be >= 0"),
            (t.keep_checkpoints >= 1, "train.keep_checkpoints", "must be >= 1"),
            (bool(self.name) and "/" not in self.name, "name", "must be non-empty and contain no '/'"),
        ]
        for ok, key, reason in checks:
            if not ok:
                raise ConfigError(f"{where}: {key} {reason}")


def _build(cls: type, raw: Any, where: str) -> Any:
    """Builds dataclass `cls` from a dict, rejecting unknown keys and values of the wrong type."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(sorted(names))})")
    values = {}
    for key, value in raw.items():
        hint = hints[key]
        path = f"{where}.{key}"
        if dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, path)
        else:
            values[key] = _coerce(hint, value, path)
    return cls(**values)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif isinstance(hint, types.UnionType):  # e.g. `int | str`: the first member type the value fits
        for member in typing.get_args(hint):
            if isinstance(value, member) and not isinstance(value, bool):
                return value
    elif typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if isinstance(value, (list, tuple)) and len(value) == len(args):
            return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    name = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"{where}: expected {name}, got {value!r}")


def absolute_location(location: str) -> str:
    """A local path made absolute (submitted jobs run in a copy of the working dir); URIs stay as they are."""
    return location if "://" in location else str(Path(location).resolve())


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A new dict: `override` on top of `base`, merging nested mappings key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# The samplers and latent normalisations of vitok.generation (flow.SAMPLERS, latents.MODES), spelled out here
# so that validating a config imports no model code.
GENERATION_SAMPLERS = ("euler", "heun")
LATENT_NORMALIZATIONS = ("channel", "scale")


@dataclass
class GenerationConfig(ValidatedConfig):
    """The generation probe of one tokenizer: a DiT trained with flow matching on the tokenizer's cached
    latents, then N samples decoded to pixels and scored against held-out reals (workflows/generation/).

    What a sweep file's `generation:` block holds: `GenerationConfig.from_dict(block)` validates it the way
    TrainConfig is validated (one-line ConfigError naming the key). The model names the DiT variant; whether it
    is class-conditional is read off the latents (labels or not), not configured.
    """

    SOURCE = "generation"

    name: str = "generator"  # MLflow run name under the tokenizer's run; re-using it resumes or skips that run
    model: str = "DiT-N/1"  # `DiT-{N,T,S,B,L,XL}/{p}` or `/{q}x{p}`: size and latent cells per token
    media_type: str = "image"  # which latents of the cache to train on: "image" or "video"
    steps: int = 200  # optimiser steps
    micro_batch_size: int = 32  # latents per worker and step (also the sampling and decoding batch)
    num_workers: int = 1  # Ray Train workers (data-parallel DDP world size)
    use_gpu: bool = False
    lr: float = 1e-4  # AdamW lr after warm-up, constant (DiT and SiT: 1e-4 at global batch 256)
    warmup_steps: int = 0  # linear warm-up from 0
    weight_decay: float = 0.0  # DiT and SiT train without weight decay
    ema_decay: float = 0.0  # EMA of the weights per step, sampled and exported when on (DiT: 0.9999); 0: off
    class_dropout: float = 0.1  # labels replaced by the null class in training (classifier-free guidance)
    normalization: str = "channel"  # latent_stats.json applied as "channel" (per-channel) or "scale" (SD-style)
    # bf16: autocast (bf16 matmuls, fp32 weights, optimiser and loss) for training, sampling and decoding, on
    # CPU and GPU alike, as the tokenizer's bf16 runs; fp32: everything in fp32; auto: as train.precision.
    precision: str = "auto"
    samples: int = 64  # N: samples generated and scored against N held-out reals (fewer if val has fewer)
    sampler: str = "heun"  # ODE sampler: "euler" (1 model call per step) or "heun" (2, second order)
    sample_steps: int = 25  # sampler steps from noise to data
    cfg_scale: float = 1.5  # classifier-free guidance at sampling (1: none); unconditional latents use 1
    seed: int = 0
    log_every: int = 10  # steps between logged metrics
    checkpoint_every: int = 100  # steps between checkpoints (0: only the final one)
    keep_checkpoints: int = 2  # Ray Train keeps this many latest checkpoints
    max_failures: int = 0  # worker-group restarts Ray Train may make; each resumes from the last checkpoint
    threads_per_worker: int = 0  # torch intra-op threads per worker; 0 = cores / workers
    shuffle_buffer: int = 256  # latents in each worker's local shuffle buffer
    # Train latents up to this many bytes (as float32) are read once by the driver and repeated from memory;
    # larger caches stream beside the workers (a CPU for Ray Data's read tasks is then needed).
    cache_max_bytes: int = 1 << 30
    weights: WeightsSection = field(default_factory=WeightsSection)  # inception: gFID; i3d: gFVD (lpips unused)

    def __post_init__(self) -> None:
        self.precision = resolve_precision(self.precision, self.use_gpu)

    def flat(self) -> dict[str, Any]:
        """`generation.key` -> value (weights as `generation.weights.key`), the form logged as MLflow params."""
        out: dict[str, Any] = {}
        for key, value in dataclasses.asdict(self).items():
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for sub, item in items:
                out[f"generation.{key}" + (f".{sub}" if sub else "")] = item
        return out

    @property
    def global_batch_size(self) -> int:
        return self.micro_batch_size * self.num_workers

    def validate(self, where: str = "generation") -> None:
        """Checks that need no I/O; the DiT name against the latents is checked when the run is planned."""
        checks = [
            (bool(self.name) and "/" not in self.name, "name", "must be non-empty and contain no '/'"),
            (self.model.startswith("DiT-"), "model", "must be a DiT variant such as 'DiT-S/2' or 'DiT-B/1x2'"),
            (self.media_type in ("image", "video"), "media_type", "must be 'image' or 'video'"),
            (self.steps >= 1, "steps", "must be >= 1"),
            (self.micro_batch_size >= 1, "micro_batch_size", "must be >= 1"),
            (self.num_workers >= 1, "num_workers", "must be >= 1"),
            (self.lr > 0, "lr", "must be > 0"),
            (0 <= self.warmup_steps < self.steps, "warmup_steps", "must be in [0, steps)"),
            (self.weight_decay >= 0, "weight_decay", "must be >= 0"),
            (0.0 <= self.ema_decay < 1.0, "ema_decay", "must be in [0, 1)"),
            (0.0 <= self.class_dropout < 1.0, "class_dropout", "must be in [0, 1)"),
            (self.normalization in LATENT_NORMALIZATIONS, "normalization",
             f"must be one of {', '.join(LATENT_NORMALIZATIONS)}"),
            (self.precision in ("bf16", "fp32"), "precision", "must be 'bf16', 'fp32' or 'auto'"),
            (self.samples >= 2, "samples", "must be >= 2 (the metrics compare two sets)"),
            (self.sampler in GENERATION_SAMPLERS, "sampler", f"must be one of {', '.join(GENERATION_SAMPLERS)}"),
            (self.sample_steps >= 1, "sample_steps", "must be >= 1"),
            (self.cfg_scale >= 0, "cfg_scale", "must be >= 0 (1: no guidance)"),
            (self.log_every >= 1, "log_every", "must be >= 1"),
            *((getattr(self, key) >= 0, key, "must be >= 0") for key in
              ("checkpoint_every", "max_failures", "threads_per_worker", "shuffle_buffer", "cache_max_bytes")),
            (self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1"),
        ]  # fmt: skip
        for ok, key, reason in checks:
            if not ok:
                raise ConfigError(f"{where}: {key} {reason}")
