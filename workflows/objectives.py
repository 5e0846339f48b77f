"""The training objective of a stage, built from the config.

Stage 1: MSE (+ L1) + beta KL (+ eta LPIPS when LPIPS weights are configured).
"""

from __future__ import annotations

from typing import Any

import torch

from vitok.losses import stage1_loss
from workflows.config import TrainConfig


class Objective:
    def __init__(self, config: TrainConfig, device: torch.device, world: int):
        self.config = config
        self.lpips: torch.nn.Module | None = None

    def generator_terms(self, output, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        o = self.config.optim
        return stage1_loss(output, x, beta=o.kl_beta, l1_weight=o.l1_weight)

    def discriminator_step(self, x: torch.Tensor, recon: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        return {}

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any] | None) -> None:
        return None
