"""DeepSpeed configuration: the ZeRO file from infra/deepspeed merged with the run's batch and precision, and what
that file cannot express, set on the engine DeepSpeed builds (`tune_engine`): in bf16, no separate overflow
checks and a multi-tensor ZeRO-0 optimiser step."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import torch

from workflows.config import ConfigError, TrainConfig, deep_merge

ZERO_CONFIG_DIR = Path(__file__).resolve().parents[2] / "infra" / "deepspeed"


def zero_config_path(stage: int) -> Path:
    return ZERO_CONFIG_DIR / f"zero_stage{stage}.json"


def deepspeed_config(config: TrainConfig, world_size: int) -> dict[str, Any]:
    """The dict handed to `deepspeed.initialize`.

    The batch keys are derived from the run config, so DeepSpeed's own consistency check
    (train_batch_size = micro x accum x world) holds by construction; `world_size` is the Ray
    worker count and must agree with `train.num_workers`.
    """
    t = config.train
    if world_size != t.num_workers:
        raise ConfigError(
            f"{config.name}: train.num_workers={t.num_workers} but Ray started {world_size} workers"
        )
    path = zero_config_path(t.zero_stage)
    if not path.is_file():
        raise ConfigError(f"{config.name}: DeepSpeed config {path} is missing")
    base = json.loads(path.read_text())
    run_specific = {
        "train_micro_batch_size_per_gpu": t.micro_batch_size,
        "gradient_accumulation_steps": t.grad_accum,
        "train_batch_size": t.global_batch_size,
        # bf16 mode: the engine keeps bf16 weights for forward and backward and fp32 master weights in the
        # optimiser, on CPU (checked with ZeRO 0-3 and gloo) as on GPU.
        "bf16": {"enabled": t.precision == "bf16"},
    }
    if t.precision == "bf16":
        # Gradients are computed in bf16 but reduced across ranks in fp32 (DeepSpeed would reduce them in the
        # model's dtype), and ZeRO 2-3 sum micro-steps in fp32. The other stages cannot, so the config refuses
        # them with grad_accum > 1 in bf16: ZeRO-0's bf16 optimiser raises on an fp32 accumulator, and the one
        # DeepSpeed 0.19.8 picks for ZeRO-1 with it (BF16_Optimizer) gave another gradient than the fp32 path
        # (norm 0.137 against 0.088 for the same two micro-batches, tests/workflows/test_bf16_gradients.py).
        run_specific["communication_data_type"] = "fp32"
        if t.zero_stage >= 2:
            run_specific["data_types"] = {"grad_accum_dtype": "fp32"}
    if config.optim.grad_clip > 0:
        run_specific["gradient_clipping"] = config.optim.grad_clip
    return deep_merge(base, run_specific)


def _stage0_bf16_step(optimizer, closure=None) -> bool:
    """One step of `optimizer`, DeepSpeed's `FP16_UnfusedOptimizer` over bf16 weights with fp32 masters, in place
    of its own `step`; returns whether it was skipped (a non-finite gradient), as DeepSpeed's step does.

    DeepSpeed's step walks the parameters one tensor at a time, several times: a cast of each bf16 gradient to
    fp32 for its norm, the norm and its square, another cast of the same gradient for the fp32 master, a
    multiply by the clip factor (by 1.0 when nothing is clipped), a copy of each master back into its bf16
    weight, and before all that a read of each gradient's finiteness back to the host (a GPU sync each). About
    eight operations per parameter tensor, each a kernel launch on a GPU. Here the gradients are cast once,
    their norms, the clip and the copy back are one multi-tensor operation each, and the host reads the norm
    once, to skip a step whose gradients are not finite, as DeepSpeed does. The same update: the same fp32
    gradients, clipped by the same factor of the same global norm (summed in another order, so equal to within
    rounding), the same optimiser step, the same masters copied back.
    """
    weights = [p for group in optimizer.fp16_groups for p in group]
    masters = [p for group in optimizer.fp32_groups for p in group]
    grads = [torch.zeros_like(m) if w.grad is None else w.grad.to(m.dtype) for w, m in zip(weights, masters)]
    norm = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))  # the step's one host read
    if not math.isfinite(norm):
        return optimizer._skip_invalid_grad_norm()
    optimizer.overflow, optimizer._global_grad_norm = False, norm
    optimizer._update_scale(False)  # counts the step, as DeepSpeed's does (no loss scale to change in bf16)
    clip = (norm + 1e-6) / optimizer.clip_grad if optimizer.clip_grad > 0 else 1.0
    if clip > 1:
        torch._foreach_mul_(grads, 1.0 / clip)
    for master, grad in zip(masters, grads):
        master.grad = grad
    optimizer.optimizer.step()
    for master in masters:
        master.grad = None  # fp32 gradients live only inside the step, as in DeepSpeed's
    with torch.no_grad():
        torch._foreach_copy_(weights, masters)
    return False


def _no_overflow_scan(*args, **kwargs) -> None:
    """Stands in for `check_overflow` of DeepSpeed's ZeRO 1-2 optimiser in bf16 mode, which leaves its step's
    `overflow` False. That check tests every gradient for inf and NaN, eight operations per parameter tensor
    (each a kernel launch on a GPU; two of them read the whole gradient), then all-reduces the flag and reads
    it back: a collective and a device sync on every step."""


def tune_engine(engine, config: TrainConfig, world_size: int) -> None:
    """What the config dict cannot say, set on the engine `deepspeed.initialize` built (DeepSpeed 0.19.8).

    In bf16 mode at ZeRO-0, the optimiser's step in multi-tensor operations, with no separate overflow check of
    the gradients; at ZeRO 1-2, no such check either (both above). bf16 has no loss scale, so all such a check
    can find is a non-finite gradient, and the same step's gradient norm finds that anyway: the step then sees
    a non-finite norm and skips the update on every rank, since at ZeRO-0 the gradients are averaged across the
    ranks before the step and at ZeRO 1-2 the norm is summed across them
    (tests/workflows/test_bf16_optimizer_step.py). With one worker at ZeRO-0, no all-reduce of the gradients
    over a group of one (it flattens, reduces and copies back every gradient to change nothing).
    """
    from deepspeed.runtime.fp16.unfused_optimizer import FP16_UnfusedOptimizer
    from deepspeed.runtime.zero.stage_1_and_2 import DeepSpeedZeroOptimizer

    optimizer, bf16 = engine.optimizer, config.train.precision == "bf16"
    if bf16 and isinstance(optimizer, FP16_UnfusedOptimizer):
        scale = optimizer.loss_scale_config
        if not (scale.dynamic_loss_scale or scale.cur_scale != 1 or optimizer.fused_lamb_legacy):
            optimizer.step = functools.partial(_stage0_bf16_step, optimizer)
    # Only where the norm is computed (DeepSpeed's default), and not with an offloaded optimiser, which tracks
    # overflow while it copies the gradients out.
    if bf16 and isinstance(optimizer, DeepSpeedZeroOptimizer) and optimizer.compute_grad_norm \
            and not optimizer.cpu_offload:
        optimizer.check_overflow = _no_overflow_scan
    if world_size == 1 and config.train.zero_stage == 0:
        engine.enable_backward_allreduce = False
