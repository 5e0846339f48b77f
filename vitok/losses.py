"""Tokenizer losses (paper Eq. 1): MSE (+ optional L1) + beta * KL + eta * LPIPS + lambda * GAN.

Stage 1 uses the first three; stage 2 adds the generator's hinge term against a discriminator. LPIPS and the
discriminator see frames folded into the batch (per-frame terms for video). Every term is its own tensor and
the total is built in one expression, so no term can overwrite another.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .gan import generator_hinge_loss


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) per element, averaged over all elements (fp32)."""
    mean, logvar = mean.float(), logvar.float()
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()


def tokenizer_loss(
    output: Any,
    x: torch.Tensor,
    beta: float = 1e-3,
    l1_weight: float = 0.0,
    lpips: nn.Module | None = None,
    lpips_weight: float = 0.0,
    disc: nn.Module | None = None,
    gan_weight: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Total loss and its terms for a `ViTokOutput` and its input x (B, T, H, W, 3).

    Returns "loss", "mse", "kl", plus "l1" when `l1_weight` is set, "lpips" when an LPIPS module and a
    non-zero weight are given, and "gan_g" when a discriminator and a non-zero weight are given (pass the
    scheduled weight from `gan.gan_weight`; at 0 the discriminator is not run at all). Values stay tensors
    (no `.item()`), so callers sync only on logging steps.
    """
    # Losses in fp32 whatever the model's precision; LPIPS and the discriminator are fp32 networks.
    recon, x = output.recon.float(), x.float()
    terms = {"mse": F.mse_loss(recon, x), "kl": kl_divergence(output.mean, output.logvar)}
    weighted = [terms["mse"], beta * terms["kl"]]
    if l1_weight:
        terms["l1"] = F.l1_loss(recon, x)
        weighted.append(l1_weight * terms["l1"])
    if lpips is not None and lpips_weight:
        terms["lpips"] = lpips(recon, x)
        weighted.append(lpips_weight * terms["lpips"])
    if disc is not None and gan_weight:
        terms["gan_g"] = generator_hinge_loss(disc(recon))
        weighted.append(gan_weight * terms["gan_g"])
    return {"loss": torch.stack(weighted).sum(), **terms}


def stage1_loss(output: Any, x: torch.Tensor, beta: float = 1e-3, l1_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """Reconstruction + beta * KL only: `tokenizer_loss` without perceptual or GAN terms."""
    return tokenizer_loss(output, x, beta=beta, l1_weight=l1_weight)
