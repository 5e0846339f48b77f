"""Reconstruction grids: originals in the top row, reconstructions below, ready to save as PNG."""

from __future__ import annotations

import numpy as np
import torch


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float pixels in [-1, 1] -> uint8 numpy array, same shape."""
    x = ((x.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255)
    return x.to(torch.uint8).numpy()


def reconstruction_grid(
    x: torch.Tensor, recon: torch.Tensor, max_items: int = 8, max_frames: int = 4, pad: int = 2
) -> np.ndarray:
    """(B, T, H, W, 3) pairs -> uint8 (2H + 3 pad, n * (frames W + pad) + pad, 3) image.

    Each of the first `max_items` samples becomes one cell: its first `max_frames` frames side by side
    (a single frame for images). Originals fill the top row, reconstructions the bottom row, on white.
    """
    n, frames = min(max_items, x.shape[0]), min(max_frames, x.shape[1])
    rows = [_to_uint8(t[:n, :frames]) for t in (x, recon)]  # each (n, frames, H, W, 3)
    _, _, H, W, _ = rows[0].shape
    cell_w = frames * W
    grid = np.full((2 * H + 3 * pad, n * (cell_w + pad) + pad, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        top = pad + r * (H + pad)
        for i in range(n):
            strip = np.concatenate(list(row[i]), axis=1)  # (H, frames * W, 3)
            left = pad + i * (cell_w + pad)
            grid[top:top + H, left:left + cell_w] = strip
    return grid
