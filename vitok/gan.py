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


def discriminator_loss(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                       r1_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """Hinge loss of `disc` on real pixels and (detached) reconstructions, with the mean logits for logging,
    plus the R1 penalty `r1_weight / 2 * E ||grad_x D(x_real)||^2` (Mescheder et al. 2018) when it is set:
    the usual cure for a discriminator that overpowers the decoder and makes stage 2 unstable.

    Both inputs are detached here, so this step never sends gradients into the tokenizer.
    """
    real = real.detach().float().requires_grad_(r1_weight > 0)
    real_logits, fake_logits = disc(real), disc(fake.detach().float())
    terms = {"d_loss": hinge_d_loss(real_logits, fake_logits)}
    if r1_weight > 0:
        (grad,) = torch.autograd.grad(real_logits.float().sum(), real, create_graph=True)
        terms["r1"] = grad.pow(2).flatten(1).sum(1).mean()
        terms["d_loss"] = terms["d_loss"] + 0.5 * r1_weight * terms["r1"]
    terms["d_real"] = real_logits.detach().mean()
    terms["d_fake"] = fake_logits.detach().mean()
    return terms
