"""Reconstruction grids: each sample's original above its reconstruction, ready to save as PNG."""

from __future__ import annotations

import math

import numpy as np
import torch

MIN_TILE = 128  # frames smaller than this are enlarged (nearest neighbour, so pixels stay visible)
MAX_WIDTH = 1100  # cells wrap onto further rows beyond this many pixels


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float pixels in [-1, 1] -> uint8 numpy array, same shape."""
    x = ((x.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255)
    return x.to(torch.uint8).numpy()


def reconstruction_grid(
    x: torch.Tensor, recon: torch.Tensor, max_items: int = 8, max_frames: int = 4, pad: int = 4
) -> np.ndarray:
    """(B, T, H, W, 3) pairs -> one uint8 (height, width, 3) image on white.

    Each of the first `max_items` samples becomes a cell: its first `max_frames` frames side by side (a frame
    strip; one frame for images), the original above the reconstruction. Frames are enlarged by a whole
    factor to at least MIN_TILE pixels; cells fill rows of at most MAX_WIDTH pixels.
    """
    n, frames = min(max_items, x.shape[0]), min(max_frames, x.shape[1])
    pairs = [_to_uint8(t[:n, :frames]) for t in (x, recon)]  # each (n, frames, H, W, 3)
    scale = max(1, math.ceil(MIN_TILE / min(pairs[0].shape[2:4])))
    pairs = [p.repeat(scale, axis=2).repeat(scale, axis=3) for p in pairs]
    _, _, h, w, _ = pairs[0].shape
    cell_w, cell_h = frames * w, 2 * h + pad
    columns = max(1, min(n, (MAX_WIDTH - pad) // (cell_w + pad)))
    rows = math.ceil(n / columns)
    grid = np.full((rows * (cell_h + pad) + pad, columns * (cell_w + pad) + pad, 3), 255, dtype=np.uint8)
    for i in range(n):
        top = pad + (i // columns) * (cell_h + pad)
        left = pad + (i % columns) * (cell_w + pad)
        for j, pixels in enumerate(pairs):  # original, then reconstruction
            strip = np.concatenate(list(pixels[i]), axis=1)  # (h, frames * w, 3)
            y = top + j * (h + pad)
            grid[y:y + h, left:left + cell_w] = strip
    return grid
