"""Analytic size and compute of a DiT configuration, in multiply-accumulates (MACs) as the DiT paper's "Gflops".

One forward pass of one sample over L tokens, width w, depth n, SwiGLU hidden h = int(mlp_ratio * w),
P = q*p*p*c latent values per token and F sinusoidal time features:

    patch embed      L * P * w
    time MLP         F * w + w * w                      once per sample, not per token
    per block        L * (4 w^2 + 3 w h) + 2 * L^2 * w    as the tokenizer's blocks (vitok.flops)
                     + w * 6w                           adaLN modulation, once per sample
    final layer      w * 2w + L * w * P                 adaLN modulation, then the output linear

The label lookup, norms, softmax, RoPE, the position embedding and biases are ignored. For DiT-XL/2 on a
32x32x4 latent (L = 256) this gives 118.69 GMACs against the paper's 118.64. A training step costs about
3 x 2 x forward MACs FLOPs per sample; a sampling step one forward (two with classifier-free guidance).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..flops import transformer_macs
from .dit import DiT, DiTConfig


def dit_forward_macs(config: DiTConfig, tokens: int) -> int:
    """MACs of one forward pass of one sample with `tokens` tokens (see the module docstring)."""
    w, patch = config.width, config.patch_dim
    embed = tokens * patch * w + config.freq_dim * w + w * w
    blocks = transformer_macs(tokens, w, config.depth, config.mlp_ratio) + config.depth * w * 6 * w
    final = w * 2 * w + tokens * w * patch
    return embed + blocks + final


@dataclass(frozen=True)
class DiTStats:
    """Size and compute of a DiT configuration on one latent grid."""

    name: str
    params: int
    gmacs: float  # one forward pass of one sample, x 1e-9
    tokens: int
    latent_grid: tuple[int, int, int]  # (T', H', W')
    channels: int
    num_classes: int


def dit_stats(config: DiTConfig, latent_grid: tuple[int, int, int]) -> DiTStats:
    """Size and compute of `config` on latents of grid (T', H', W')."""
    grid = config.token_grid(*latent_grid)  # raises ValueError if the patch does not tile the grid
    tokens = grid[0] * grid[1] * grid[2]
    with torch.device("meta"):
        model = DiT(config)
    return DiTStats(
        name=config.name or "custom",
        params=sum(p.numel() for p in model.parameters()),
        gmacs=round(dit_forward_macs(config, tokens) * 1e-9, 4),
        tokens=tokens,
        latent_grid=tuple(latent_grid),
        channels=config.channels,
        num_classes=config.num_classes,
    )
