"""Stage-1 losses (paper Eq. 1 without the perceptual and GAN terms): reconstruction + beta * KL."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, l1_weight: float = 0.0) -> torch.Tensor:
    """MSE, plus `l1_weight` times the mean absolute error when it is non-zero."""
    loss = F.mse_loss(recon.float(), target.float())
    if l1_weight:
        loss = loss + l1_weight * F.l1_loss(recon.float(), target.float())
    return loss


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) per element, averaged over all elements (fp32)."""
    mean, logvar = mean.float(), logvar.float()
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()


def stage1_loss(output: Any, x: torch.Tensor, beta: float = 1e-3, l1_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """Total loss and its terms for a `ViTokOutput` and its input x; every term is its own tensor.

    Returns {"loss", "mse", "kl"} and "l1" when `l1_weight` is set. Values stay tensors (no `.item()`),
    so callers sync only on logging steps.
    """
    mse = F.mse_loss(output.recon.float(), x.float())
    kl = kl_divergence(output.mean, output.logvar)
    terms = {"mse": mse, "kl": kl}
    loss = mse + beta * kl
    if l1_weight:
        l1 = F.l1_loss(output.recon.float(), x.float())
        terms["l1"] = l1
        loss = loss + l1_weight * l1
    return {"loss": loss, **terms}
