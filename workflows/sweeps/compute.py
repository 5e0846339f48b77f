"""A sweep's compute, as its plan prints it: each tokenizer's training FLOPs, its generation probe's DiT training
and sampling FLOPs, and, for a given number of accelerators, peak and utilisation, the estimated wall time.

FLOPs are 2 per multiply-accumulate (vitok counts MACs, as the papers do). A training step costs a forward and a
backward, about 3 forwards; a sampling step costs one forward per model call (two for Heun), twice over with
classifier-free guidance (the conditional and the unconditional velocity).
"""

from __future__ import annotations

from dataclasses import dataclass

from vitok.generation import DiTConfig, dit_stats
from workflows.config import ConfigError, GenerationConfig
from workflows.training.plan import RunPlan

MODEL_CALLS_PER_STEP = {"euler": 1, "heun": 2}  # workflows/generation's samplers (vitok.generation.flow)


@dataclass(frozen=True)
class Hardware:
    """What turns FLOPs into seconds: accelerators, each one's peak at the run's precision, and the share
    of that peak the runs reach (model FLOPs utilisation)."""

    gpus: int
    peak_tflops: float
    mfu: float

    def seconds(self, flops: float) -> float:
        return flops / (self.gpus * self.peak_tflops * 1e12 * self.mfu)

    def describe(self) -> str:
        return (f"{self.gpus} GPU(s) x {self.peak_tflops:g} TFLOP/s peak x MFU {self.mfu:g} = "
                f"{self.gpus * self.peak_tflops * self.mfu:.4g} TFLOP/s sustained")  # fmt: skip


def training_flops(plan: RunPlan) -> float:
    """A tokenizer's training: 6 x MACs/sample x steps x global batch."""
    t = plan.config.train
    return 6.0 * plan.stats.gmacs * 1e9 * t.steps * t.global_batch_size


def probe_dit_gmacs(plan: RunPlan, probe: GenerationConfig) -> float:
    """GMACs of one forward of the probe's DiT on this tokenizer's latents (T/q, H/p, W/p, c). The label
    embedding of a class-conditional DiT is a lookup, so conditioning changes no count."""
    s = plan.stats
    grid = (plan.frames // s.tubelet, plan.resolution // s.patch, plan.resolution // s.patch)
    try:
        return dit_stats(DiTConfig.from_name(probe.model, channels=s.channels), grid).gmacs
    except ValueError as err:
        raise ConfigError(f"{plan.name}: generation.model {probe.model} on latents "
                          f"{'x'.join(map(str, grid))}x{s.channels}: {err}") from None  # fmt: skip


def probe_samples(plan: RunPlan, probe: GenerationConfig) -> int:
    """Samples the probe generates: as configured, fewer when the held-out split has fewer (unknown when the
    shards were not read: then as configured)."""
    return min(probe.samples, plan.val_rows) if plan.val_rows else probe.samples


def probe_flops(plan: RunPlan, probe: GenerationConfig) -> tuple[float, float]:
    """(training, sampling) FLOPs of the probe's DiT after this tokenizer: 6 x MACs x steps x global batch,
    and 2 x MACs x model calls x samples x 2 with guidance. Guidance is counted whenever cfg_scale is not 1:
    the latents' labels, which decide it, are read only when the probe runs, so this is the upper bound."""
    macs = probe_dit_gmacs(plan, probe) * 1e9
    train = 6.0 * macs * probe.steps * probe.global_batch_size
    calls = probe.sample_steps * MODEL_CALLS_PER_STEP[probe.sampler]
    guidance = 1 if probe.cfg_scale == 1 else 2
    return train, 2.0 * macs * calls * probe_samples(plan, probe) * guidance


def format_duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.3g} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} days"
