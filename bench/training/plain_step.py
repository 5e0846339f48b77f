"""The plain PyTorch training step the trainer benchmarks compare against (bench/training/train_step.py and
bench/training/zero_split.py): the same model, stage-1 loss, gradient clipping and fused optimiser as the trainer,
in one process, bf16 as autocast (the usual plain-PyTorch way to train in bf16), timed by phase."""

from __future__ import annotations

import time

import torch

from vitok import ViTok
from vitok.losses import stage1_loss
from workflows.config import TrainConfig
from workflows.training.optim import build_optimizer


class PlainStep:
    """One training step of `config`'s model on the batch `x` (model input in [-1, 1], fp32) per call; returns the
    seconds of (forward with the loss, backward, clip and optimiser step)."""

    def __init__(self, config: TrainConfig, x: torch.Tensor):
        torch.manual_seed(0)
        self.config, self.x = config, x
        self.model = ViTok.from_name(config.model.variant, channels=config.model.channels)
        self.optimizer, self.schedule = build_optimizer(self.model, config, torch.device("cpu"))
        self.bf16 = config.train.precision == "bf16"

    def __call__(self) -> tuple[float, float, float]:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            loss = stage1_loss(self.model(self.x), self.x)["loss"]
        forward = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        backward = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        self.optimizer.step()
        self.schedule.step()
        return forward - start, backward - forward, time.perf_counter() - backward
