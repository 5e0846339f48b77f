"""Reconstruction metrics on (B, T, H, W, 3) tensors in [-1, 1]: PSNR and SSIM (LPIPS is `vitok.lpips`).

PSNR and SSIM map to [0, 1] (data_range 1); all fold frames into the batch, score each frame, and return the
mean over frames as a python float: call them on evaluation steps, not inside the training step.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure


def _to_frames01(x: torch.Tensor) -> torch.Tensor:
    """(B, T, H, W, 3) in [-1, 1] -> (B*T, 3, H, W) float32 in [0, 1]."""
    if x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"expected (B, T, H, W, 3), got {tuple(x.shape)}")
    x = ((x.detach().float() + 1.0) / 2.0).clamp(0.0, 1.0)
    return x.flatten(0, 1).permute(0, 3, 1, 2)  # (B*T, 3, H, W)


@torch.no_grad()
def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean per-frame PSNR in dB."""
    per_frame = peak_signal_noise_ratio(
        _to_frames01(pred), _to_frames01(target), data_range=1.0, reduction="none", dim=(1, 2, 3)
    )
    return float(per_frame.mean())


@torch.no_grad()
def ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean per-frame SSIM (Gaussian window 11, sigma 1.5)."""
    return float(structural_similarity_index_measure(_to_frames01(pred), _to_frames01(target), data_range=1.0))
