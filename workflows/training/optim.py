"""Optimiser and learning-rate schedule of the paper's recipe: AdamW (0.9, 0.95), cosine with warm-up."""

from __future__ import annotations

import math

import torch

from workflows.config import TrainConfig


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the peak lr at optimiser step `step` (0-based): linear warm-up, then cosine to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_optimizer(
    model: torch.nn.Module, config: TrainConfig, device: torch.device | None = None
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the trainable parameters; with a `device` and `optim.fused_adamw`, PyTorch's fused kernel (CPU
    and GPU: one pass over each tensor, no temporaries the size of the parameters, which matters because
    DeepSpeed's ZeRO hands it one flat tensor of them all)."""
    o = config.optim
    # No weight decay on norms and biases (1-D tensors), as is usual for ViTs.
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.peak_lr,
        betas=o.betas,
        fused=device is not None and o.fused_adamw,
    )
    steps = config.train.steps
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, o.warmup_steps, steps)
    )
    return optimizer, schedule
