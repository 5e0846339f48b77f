"""Hinge GAN losses and the generator-weight schedule for stage 2 (paper: hinge loss, weight 0.05, warm-up)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: mean(relu(1 - D(x))) + mean(relu(1 + D(x_hat))), halved."""
    return 0.5 * (F.relu(1.0 - real_logits.float()).mean() + F.relu(1.0 + fake_logits.float()).mean())


def generator_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator side of the hinge GAN: -mean(D(x_hat))."""
    return -fake_logits.float().mean()


def gan_weight(step: int, start_step: int, warmup_steps: int, weight: float) -> float:
    """0 before `start_step`, then a linear ramp to `weight` over `warmup_steps` steps, then `weight`."""
    if step < start_step:
        return 0.0
    if warmup_steps <= 0:
        return weight
    return weight * min(1.0, (step - start_step + 1) / warmup_steps)


def discriminator_loss(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
    """Hinge loss of `disc` on real pixels and (detached) reconstructions, with the mean logits for logging.

    `fake` is detached here, so this step never sends gradients into the tokenizer.
    """
    real_logits, fake_logits = disc(real.detach()), disc(fake.detach())
    return {
        "d_loss": hinge_d_loss(real_logits, fake_logits),
        "d_real": real_logits.detach().mean(),
        "d_fake": fake_logits.detach().mean(),
    }
