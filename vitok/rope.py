"""3D axial rotary position embedding (RoPE) as small pure functions.

Each head's `head_dim // 2` rotary pairs are split across the (t, h, w) axes as evenly as possible; a pair
assigned to an axis rotates by `position_on_that_axis * frequency`. Positions are integer token-grid indices,
so the same weights serve any input whose sides the patch divides, and an image (one frame) has t = 0
everywhere, which makes its time pairs the identity rotation. All angle math runs in fp32 so bf16
autocast cannot quantise large positions; the result is cast back to the input dtype.
"""

from __future__ import annotations

import torch


def axis_pairs(head_dim: int) -> tuple[int, int, int]:
    """Rotary pairs given to the (t, h, w) axes; the remainder goes to the spatial axes (w first)."""
    pairs = head_dim // 2
    base, rest = divmod(pairs, 3)
    return base, base + (rest >= 2), base + (rest >= 1)


def grid_positions(grid: tuple[int, int, int], device: torch.device | None = None) -> torch.Tensor:
    """Integer (t, h, w) index of every token of a (T', H', W') grid in raster order: (L, 3) float32."""
    axes = [torch.arange(n, device=device, dtype=torch.float32) for n in grid]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)  # (L, 3)


def rope_angles(positions: torch.Tensor, head_dim: int, theta: float = 10000.0) -> torch.Tensor:
    """Rotation angle of every rotary pair at every position: (L, 3) -> (L, head_dim // 2), fp32."""
    chunks = []
    for axis, n in enumerate(axis_pairs(head_dim)):
        if n == 0:
            continue
        exponent = torch.arange(n, device=positions.device, dtype=torch.float32) / n
        inv_freq = theta ** -exponent  # (n,) from 1 down towards 1/theta
        chunks.append(positions[:, axis, None].float() * inv_freq)  # (L, n)
    return torch.cat(chunks, dim=-1)


def rope_cos_sin(
    grid: tuple[int, int, int], head_dim: int, theta: float = 10000.0, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables for a token grid, each (L, head_dim // 2) in fp32."""
    angles = rope_angles(grid_positions(grid, device), head_dim, theta)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs (x[2i], x[2i+1]) of x (..., L, head_dim) by the tabled angles."""
    pairs = x.float().unflatten(-1, (-1, 2))  # (..., L, head_dim/2, 2)
    x0, x1 = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return rotated.flatten(-2).type_as(x)
