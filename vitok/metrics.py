"""Reconstruction metrics as published numbers are computed: on uint8 images, per frame (LPIPS is `vitok.lpips`).

Reconstructions are quantised to uint8 first (`quantize_uint8`), as a saved PNG would be; PSNR and SSIM are
then taken per frame in float64 with data range 255. SSIM is scikit-image's
`structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255,
channel_axis=-1)`: an 11x11 Gaussian window (truncated at 3.5 sigma), population covariances, K1 = 0.01,
K2 = 0.03, the SSIM map averaged over channels and over the pixels at least 5 away from the border (the
cropped map depends only on pixels inside the image, so no padding rule matters). Call these on evaluation
steps, not inside the training step.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F

SSIM_SIGMA, SSIM_TRUNCATE, SSIM_K1, SSIM_K2 = 1.5, 3.5, 0.01, 0.03
DATA_RANGE = 255.0
MIN_MSE = 1e-10  # identical frames: PSNR is capped (about 148 dB) instead of infinite


def quantize_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float pixels in [-1, 1] -> uint8 in [0, 255], rounded (values outside [-1, 1] are clipped)."""
    return ((x.detach().float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def _frames(x: torch.Tensor) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 or float in [-1, 1] -> (B*T, 3, H, W) float64 in [0, 255]."""
    if x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"expected (B, T, H, W, 3), got {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        x = quantize_uint8(x)
    return x.flatten(0, 1).permute(0, 3, 1, 2).to(torch.float64)


@torch.no_grad()
def psnr_per_frame(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each frame, (B*T,) float64; float inputs are quantised to uint8 first."""
    mse = (_frames(pred) - _frames(target)).pow(2).mean(dim=(1, 2, 3)).clamp(min=MIN_MSE)
    return 10.0 * torch.log10(DATA_RANGE**2 / mse)


def _gaussian_window() -> torch.Tensor:
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)  # scipy.ndimage's rule: 5 for sigma 1.5
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    return weights / weights.sum()


@torch.no_grad()
def ssim_per_frame(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM of each frame (mean over channels), (B*T,) float64, equal to scikit-image's (module docstring)."""
    a, b = _frames(pred), _frames(target)
    window = _gaussian_window().to(a.device)  # the frames' device: evaluation scores on the GPU it ran on
    size = window.numel()
    if min(a.shape[-2:]) < size:
        raise ValueError(f"SSIM needs frames of at least {size}x{size} pixels, got {tuple(a.shape[-2:])}")
    channels = a.shape[1]
    rows = window.view(1, 1, size, 1).expand(channels, 1, size, 1)
    cols = window.view(1, 1, 1, size).expand(channels, 1, 1, size)

    def blur(x: torch.Tensor) -> torch.Tensor:  # separable Gaussian, 'valid': the border crop of skimage
        return F.conv2d(F.conv2d(x, rows, groups=channels), cols, groups=channels)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (SSIM_K1 * DATA_RANGE) ** 2, (SSIM_K2 * DATA_RANGE) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim_map.mean(dim=(1, 2, 3))


def per_sample(per_frame: torch.Tensor, batch: int) -> torch.Tensor:
    """(B*T,) per-frame values -> (B,) per-sample means (a clip's score is the mean over its frames)."""
    return per_frame.view(batch, -1).mean(dim=1)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean per-frame PSNR in dB over a batch (uint8-quantised)."""
    return float(psnr_per_frame(pred, target).mean())


def ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean per-frame SSIM over a batch (uint8-quantised, scikit-image's definition)."""
    return float(ssim_per_frame(pred, target).mean())


