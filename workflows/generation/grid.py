"""A grid of generated samples, ready to save as PNG: one cell per sample, its frames side by side."""

from __future__ import annotations

import math

import numpy as np
import torch

from vitok.visualize import MAX_WIDTH, MIN_TILE


def samples_grid(samples: torch.Tensor, max_items: int = 16, max_frames: int = 4, pad: int = 4) -> np.ndarray:
    """uint8 (N, T, H, W, 3) -> one uint8 (height, width, 3) image on white.

    The first `max_items` samples, each its first `max_frames` frames (one for images), enlarged by a whole
    factor to at least MIN_TILE pixels (nearest neighbour) and laid out in rows of at most MAX_WIDTH pixels, as
    the tokenizer's reconstruction grids are.
    """
    n, frames = min(max_items, samples.shape[0]), min(max_frames, samples.shape[1])
    pixels = samples[:n, :frames].numpy()  # (n, frames, H, W, 3)
    scale = max(1, math.ceil(MIN_TILE / min(pixels.shape[2:4])))
    pixels = pixels.repeat(scale, axis=2).repeat(scale, axis=3)
    _, _, h, w, _ = pixels.shape
    cell_w = frames * w
    columns = max(1, min(n, (MAX_WIDTH - pad) // (cell_w + pad)))
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + pad) + pad, columns * (cell_w + pad) + pad, 3), 255, dtype=np.uint8)
    for i in range(n):
        top, left = pad + (i // columns) * (h + pad), pad + (i % columns) * (cell_w + pad)
        grid[top : top + h, left : left + cell_w] = np.concatenate(list(pixels[i]), axis=1)  # (h, frames * w, 3)
    return grid
