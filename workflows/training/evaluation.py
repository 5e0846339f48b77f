"""Held-out evaluation as published numbers are computed, shared out over the ranks.

Reconstructions are quantised to uint8 before every metric (PSNR, SSIM, LPIPS, rFID/rFVD), as a saved image
would be. Every metric is taken per sample, so each mean comes with n and a 95% bootstrap interval that
resamples the validation set's independent units (`data.eval_unit`: crops of one scene, or clips of one
video, move together). The per-sample values come back too, keyed by sample id, so a sweep's report can
draw every run's mean from the same resampled units and compare runs as the paired measurements they are.

Each rank scores its own share of the validation rows; the per-sample values and the feature statistics
are gathered at the end, so every rank returns the same results. The rows come to every rank in the same
order (each worker reads the whole, small, validation split), in rounds of world x batch rows: rank r takes
the r-th batch of a round, and a rank whose batch of the last round is empty runs one forward on a
placeholder and drops it. Every rank therefore runs the same number of forwards, which a ZeRO-3 model needs
(each forward gathers parameters collectively).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np
import torch
import torch.distributed as dist

from vitok.bootstrap import bootstrap_ci
from vitok.fid import FeatureStats, frechet_distance
from vitok.metrics import per_sample, psnr_per_frame, quantize_uint8, ssim_per_frame
from vitok.visualize import reconstruction_grid

GRID_SAMPLES = 8  # samples in the reconstruction grid logged to MLflow


def eval_group(source_uri: str, sample_id: str, unit: str) -> str:
    """The independent unit a validation sample belongs to (see `DataSection.eval_unit`)."""
    if unit == "sample":
        return sample_id
    if unit == "folder":
        return source_uri.rsplit("/", 1)[0]
    return source_uri


class ValBatch(NamedTuple):
    """Validation rows: uint8 (B, T, H, W, 3) pixels, and each row's sample id and independent unit."""

    pixels: torch.Tensor
    sample_ids: list[str]
    groups: list[str]


def pixels_to_model_input(pixels: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (B, T, H, W, 3) from the shards -> float (B, T, H, W, 3) in [-1, 1], the model's layout."""
    return pixels.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)


@dataclass
class _Scores:
    """One rank's per-sample values and feature statistics."""

    rows: list[int] = field(default_factory=list)  # each sample's position in the validation stream
    sample_ids: list[str] = field(default_factory=list)  # as `rows`
    groups: list[str] = field(default_factory=list)  # each sample's independent unit, as `rows`
    values: dict[str, list[float]] = field(default_factory=dict)  # metric -> per-sample values, as `rows`
    features: dict[str, tuple[FeatureStats, FeatureStats]] = field(default_factory=dict)  # real, reconstructed

    def add(self, name: str, values: torch.Tensor) -> None:
        self.values.setdefault(name, []).extend(values.double().cpu().tolist())


def _rounds(batches: Iterable[ValBatch], max_samples: int, round_rows: int) -> Iterator[ValBatch]:
    """The first `max_samples` rows of `batches`, regrouped into chunks of `round_rows` (the last may be short)."""
    pending: list[ValBatch] = []
    held = seen = 0

    def joined() -> ValBatch:
        return ValBatch(torch.cat([b.pixels for b in pending]), [i for b in pending for i in b.sample_ids],
                        [g for b in pending for g in b.groups])

    for batch in batches:
        keep = max_samples - seen
        batch = ValBatch(batch.pixels[:keep], list(batch.sample_ids[:keep]), list(batch.groups[:keep]))
        if len(batch.pixels) == 0:
            break
        pending.append(batch)
        held += len(batch.pixels)
        seen += len(batch.pixels)
        while held >= round_rows:
            chunk = joined()
            yield ValBatch(chunk.pixels[:round_rows], chunk.sample_ids[:round_rows], chunk.groups[:round_rows])
            rest = ValBatch(chunk.pixels[round_rows:], chunk.sample_ids[round_rows:], chunk.groups[round_rows:])
            pending, held = ([rest] if len(rest.pixels) else []), len(rest.pixels)
        if seen >= max_samples:
            break
    if held:
        yield joined()


def _gather(scores: _Scores, world: int) -> _Scores:
    """Every rank's scores, merged in stream order (so the result does not depend on the world size), on
    every rank."""
    if world == 1:
        return scores
    parts: list[_Scores | None] = [None] * world
    dist.all_gather_object(parts, scores)
    merged = _Scores()
    order = np.argsort(np.concatenate([part.rows for part in parts]), kind="stable")
    merged.rows = np.concatenate([part.rows for part in parts])[order].tolist()
    merged.sample_ids = [i for part in parts for i in part.sample_ids]
    merged.sample_ids = [merged.sample_ids[k] for k in order]
    merged.groups = [g for part in parts for g in part.groups]
    merged.groups = [merged.groups[k] for k in order]
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
    batches: Iterable[ValBatch],
    max_samples: int,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    lpips: torch.nn.Module | None = None,
    feature_nets: dict[str, torch.nn.Module] | None = None,
    rank: int = 0,
    world: int = 1,
) -> tuple[dict[str, float], np.ndarray | None, dict[str, list] | None]:
    """Scores `reconstruct` (deterministic: the posterior mean) on up to `max_samples` held-out rows.

    `batches` yields the same rows on every rank. Returns the metrics (`eval_samples` = n, `eval_groups` =
    the independent units they come from; `eval_psnr`, `eval_ssim` and, with an LPIPS network, `eval_lpips`,
    each with `_ci_low` / `_ci_high`, the 95% bootstrap interval of the mean, resampling units; one Frechet
    distance per entry of `feature_nets`, e.g. {"eval_rfid": inception}), a grid of rank 0's first
    GRID_SAMPLES samples (None on other ranks) and the per-sample values as columns (`sample_id`, `group`,
    `psnr`, `ssim`[, `lpips`]; None when nothing was scored).
    """
    scores = _Scores(values={"psnr": [], "ssim": []})
    for name in feature_nets or {}:
        scores.features[name] = (FeatureStats(), FeatureStats())
    shown: list[tuple[torch.Tensor, torch.Tensor]] = []
    for index, chunk in enumerate(_rounds(batches, max_samples, batch_size * world)):
        first = index * batch_size * world + rank * batch_size
        share = slice(rank * batch_size, (rank + 1) * batch_size)
        mine = chunk.pixels[share]
        placeholder = len(mine) == 0  # this rank's share of the last round is empty: a lockstep forward only
        x = pixels_to_model_input(chunk.pixels[:1] if placeholder else mine, device)
        recon_u8 = quantize_uint8(reconstruct(x))
        if placeholder:
            continue
        target_u8 = mine.to(recon_u8.device)
        recon = pixels_to_model_input(recon_u8, device)  # the quantised reconstruction, back in [-1, 1]
        n = len(mine)
        scores.rows.extend(range(first, first + n))
        scores.sample_ids.extend(chunk.sample_ids[share])
        scores.groups.extend(chunk.groups[share])
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
        return {"eval_samples": 0.0}, None, None
    results = {"eval_samples": float(count), "eval_groups": float(len(set(merged.groups)))}
    for name, values in merged.values.items():
        results[f"eval_{name}"] = float(np.mean(values))
        results[f"eval_{name}_ci_low"], results[f"eval_{name}_ci_high"] = bootstrap_ci(values, merged.groups)
    for name, (real, fake) in merged.features.items():
        results[name] = frechet_distance(*real.mean_cov(), *fake.mean_cov())
    grid = None
    if shown:
        grid = reconstruction_grid(torch.cat([a for a, _ in shown]), torch.cat([b for _, b in shown]), GRID_SAMPLES)
    samples = {"sample_id": merged.sample_ids, "group": merged.groups, **merged.values}
    return results, grid, samples
