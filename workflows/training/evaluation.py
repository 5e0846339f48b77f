"""Held-out evaluation: PSNR and SSIM over the val split, and a reconstruction grid for MLflow."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch

from vitok.fid import FeatureStats, frechet_distance
from vitok.metrics import psnr, ssim
from vitok.visualize import reconstruction_grid

GRID_SAMPLES = 8  # samples in the reconstruction grid logged to MLflow


def pixels_to_model_input(pixels: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (B, T, H, W, 3) from the shards -> float (B, T, H, W, 3) in [-1, 1], the model's layout."""
    return pixels.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)


@torch.no_grad()
def evaluate(
    reconstruct: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[torch.Tensor],
    max_samples: int,
    device: torch.device | str = "cpu",
    lpips: torch.nn.Module | None = None,
    feature_nets: dict[str, torch.nn.Module] | None = None,
) -> tuple[dict[str, float], np.ndarray | None]:
    """Mean PSNR/SSIM of `reconstruct` (deterministic: the posterior mean) over up to `max_samples`.

    Every rank must call this with the same batches when the model is ZeRO-3 partitioned, because each
    forward gathers parameters collectively; only rank 0 needs the result.
    Returns the metrics (`eval_psnr`, `eval_ssim`, `eval_samples`, and `eval_lpips` when an LPIPS network
    is given, and one Frechet distance per entry of `feature_nets`, e.g. {"eval_rfid": inception}) and a grid
    of the first GRID_SAMPLES samples.
    """
    seen, psnr_sum, ssim_sum, lpips_sum = 0, 0.0, 0.0, 0.0
    shown: list[tuple[torch.Tensor, torch.Tensor]] = []  # the first GRID_SAMPLES (input, reconstruction)
    stats = {name: (FeatureStats(), FeatureStats()) for name in (feature_nets or {})}
    for pixels in batches:
        if seen >= max_samples:
            break
        x = pixels_to_model_input(pixels[: max_samples - seen], device)
        recon = reconstruct(x).float().clamp(-1, 1)
        n = x.shape[0]
        psnr_sum += psnr(recon, x) * n
        ssim_sum += ssim(recon, x) * n
        if lpips is not None:
            lpips_sum += float(lpips(recon, x).mean()) * n
        for name, (real, fake) in stats.items():
            real.update(feature_nets[name](x))
            fake.update(feature_nets[name](recon))
        if sum(len(a) for a, _ in shown) < GRID_SAMPLES:
            shown.append((x[:GRID_SAMPLES].cpu(), recon[:GRID_SAMPLES].cpu()))
        seen += n
    if seen == 0:
        return {"eval_samples": 0.0}, None
    grid = reconstruction_grid(torch.cat([a for a, _ in shown]), torch.cat([b for _, b in shown]), GRID_SAMPLES)
    results = {"eval_psnr": psnr_sum / seen, "eval_ssim": ssim_sum / seen, "eval_samples": float(seen)}
    if lpips is not None:
        results["eval_lpips"] = lpips_sum / seen
    for name, (real, fake) in stats.items():
        results[name] = frechet_distance(*real.mean_cov(), *fake.mean_cov())
    return results, grid
