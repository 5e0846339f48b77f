"""Held-out evaluation as published numbers are computed, shared out over the ranks.

Reconstructions are quantised to uint8 before every metric (PSNR, SSIM, LPIPS, rFID/rFVD), as a saved image
would be. Every metric is taken per sample, so each mean comes with n and a 95% bootstrap interval.

Each rank scores its own share of the validation rows; the per-sample values and the feature statistics
are gathered at the end, so every rank returns the same results. The rows come to every rank in the same
order (each worker reads the whole, small, validation split), in rounds of world x batch rows: rank r takes
the r-th batch of a round, and a rank whose batch of the last round is empty runs one forward on a
placeholder and drops it. Every rank therefore runs the same number of forwards, which a ZeRO-3 model needs
(each forward gathers parameters collectively).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.distributed as dist

from vitok.bootstrap import bootstrap_ci
from vitok.fid import FeatureStats, frechet_distance
from vitok.metrics import per_sample, psnr_per_frame, quantize_uint8, ssim_per_frame
from vitok.visualize import reconstruction_grid

GRID_SAMPLES = 8  # samples in the reconstruction grid logged to MLflow


def pixels_to_model_input(pixels: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (B, T, H, W, 3) from the shards -> float (B, T, H, W, 3) in [-1, 1], the model's layout."""
    return pixels.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)


@dataclass
class _Scores:
    """One rank's per-sample values and feature statistics."""

    rows: list[int] = field(default_factory=list)  # each sample's position in the validation stream
    values: dict[str, list[float]] = field(default_factory=dict)  # metric -> per-sample values, as `rows`
    features: dict[str, tuple[FeatureStats, FeatureStats]] = field(default_factory=dict)  # real, reconstructed

    def add(self, name: str, values: torch.Tensor) -> None:
        self.values.setdefault(name, []).extend(values.double().cpu().tolist())


def _rounds(batches: Iterable[torch.Tensor], max_samples: int, round_rows: int) -> Iterator[torch.Tensor]:
    """The first `max_samples` rows of `batches`, regrouped into chunks of `round_rows` (the last may be short)."""
    pending: list[torch.Tensor] = []
    held = seen = 0
    for pixels in batches:
        pixels = pixels[: max_samples - seen]
        if len(pixels) == 0:
            break
        pending.append(pixels)
        held += len(pixels)
        seen += len(pixels)
        while held >= round_rows:
            chunk = torch.cat(pending)
            yield chunk[:round_rows]
            pending, held = ([chunk[round_rows:]] if len(chunk) > round_rows else []), len(chunk) - round_rows
        if seen >= max_samples:
            break
    if held:
        yield torch.cat(pending)


def _gather(scores: _Scores, world: int) -> _Scores:
    """Every rank's scores, merged in stream order (so the result does not depend on the world size), on
    every rank."""
    if world == 1:
        return scores
    parts: list[_Scores | None] = [None] * world
    dist.all_gather_object(parts, scores)
    merged = _Scores()
    order = np.argsort(np.concatenate([part.rows for part in parts]), kind="stable")
    for name in scores.values:
        values = np.concatenate([part.values[name] for part in parts])
        merged.values[name] = values[order].tolist()
    for part in parts:
        for name, (real, fake) in part.features.items():
            if name not in merged.features:
                merged.features[name] = (FeatureStats(), FeatureStats())
            for total, piece in zip(merged.features[name], (real, fake)):
                if piece.count:
                    total.count += piece.count
                    total.total = piece.total.clone() if total.total is None else total.total + piece.total
                    total.outer = piece.outer.clone() if total.outer is None else total.outer + piece.outer
    return merged


@torch.no_grad()
def evaluate(
    reconstruct: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[torch.Tensor],
    max_samples: int,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    lpips: torch.nn.Module | None = None,
    feature_nets: dict[str, torch.nn.Module] | None = None,
    rank: int = 0,
    world: int = 1,
) -> tuple[dict[str, float], np.ndarray | None]:
    """Scores `reconstruct` (deterministic: the posterior mean) on up to `max_samples` held-out rows.

    `batches` yields uint8 (B, T, H, W, 3) pixels, the same on every rank. Returns the metrics (`eval_samples`
    = n; `eval_psnr`, `eval_ssim` and, with an LPIPS network, `eval_lpips`, each with `_ci_low` / `_ci_high`,
    the 95% bootstrap interval of the mean over samples; one Frechet distance per entry of `feature_nets`,
    e.g. {"eval_rfid": inception}) and a grid of rank 0's first GRID_SAMPLES samples (None on other ranks).
    """
    scores = _Scores(values={"psnr": [], "ssim": []})
    for name in feature_nets or {}:
        scores.features[name] = (FeatureStats(), FeatureStats())
    shown: list[tuple[torch.Tensor, torch.Tensor]] = []
    for index, chunk in enumerate(_rounds(batches, max_samples, batch_size * world)):
        first = index * batch_size * world + rank * batch_size
        mine = chunk[rank * batch_size:(rank + 1) * batch_size]
        placeholder = len(mine) == 0  # this rank's share of the last round is empty: a lockstep forward only
        x = pixels_to_model_input(chunk[:1] if placeholder else mine, device)
        recon_u8 = quantize_uint8(reconstruct(x))
        if placeholder:
            continue
        target_u8 = mine.to(recon_u8.device)
        recon = pixels_to_model_input(recon_u8, device)  # the quantised reconstruction, back in [-1, 1]
        n = len(mine)
        scores.rows.extend(range(first, first + n))
        scores.add("psnr", per_sample(psnr_per_frame(recon_u8, target_u8), n))
        scores.add("ssim", per_sample(ssim_per_frame(recon_u8, target_u8), n))
        if lpips is not None:
            scores.add("lpips", per_sample(lpips.per_image(recon.float(), x.float()), n))
        for name, (real, fake) in scores.features.items():
            real.update(feature_nets[name](x))
            fake.update(feature_nets[name](recon))
        if sum(len(a) for a, _ in shown) < GRID_SAMPLES:
            shown.append((x[:GRID_SAMPLES].cpu(), recon[:GRID_SAMPLES].cpu()))

    merged = _gather(scores, world)
    count = len(merged.values["psnr"])
    if count == 0:
        return {"eval_samples": 0.0}, None
    results = {"eval_samples": float(count)}
    for name, values in merged.values.items():
        results[f"eval_{name}"] = float(np.mean(values))
        results[f"eval_{name}_ci_low"], results[f"eval_{name}_ci_high"] = bootstrap_ci(values)
    for name, (real, fake) in merged.features.items():
        results[name] = frechet_distance(*real.mean_cov(), *fake.mean_cov())
    grid = None
    if shown:
        grid = reconstruction_grid(torch.cat([a for a, _ in shown]), torch.cat([b for _, b in shown]), GRID_SAMPLES)
    return results, grid
