"""The step of DeepSpeed's ZeRO-0 bf16 optimiser (`FP16_UnfusedOptimizer.step`, DeepSpeed 0.19.8) in multi-tensor
operations, which `tune_engine` puts in its place.

DeepSpeed's own step walks the parameters one tensor at a time, several times: a cast of each bf16 gradient to
fp32 for its norm, the norm and its square, another cast of the same gradient for the fp32 master, a multiply
by the clip factor (by 1.0 when nothing is clipped), and a copy of each master back into its bf16 weight.
About eight operations per parameter tensor, each a kernel launch on a GPU, besides the optimiser's own fused
step. Here the gradients are cast once, their norms, the clip and the copy
back are one multi-tensor operation each, and the host reads the norm once, to skip a step whose gradients
are not finite, as DeepSpeed does.

What it computes is DeepSpeed's step without a loss scale, which bf16 does not have: the same fp32 gradients,
clipped by the same factor of the same global norm (summed in another order, so equal to within rounding),
the same optimiser step, the same masters copied back (tests/workflows/test_bf16_optimizer_step.py).
"""

from __future__ import annotations

import math

import torch


def stage0_bf16_step(optimizer, closure=None) -> bool:
    """One step of `optimizer`, DeepSpeed's `FP16_UnfusedOptimizer` over bf16 weights with fp32 masters; returns
    whether it was skipped (a non-finite gradient), as DeepSpeed's step does."""
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
