"""Scores of N generated samples against N held-out reals, on rank 0.

Always the multi-scale sliced Wasserstein distance on Laplacian-pyramid 7x7 patches (`gen_swd`, x 1e3, and
`gen_swd_{resolution}` per level), which needs no pretrained network, with its 95% interval over the N samples
(`gen_swd_ci_low` / `gen_swd_ci_high`: a delete-a-group jackknife, vitok.generation.swd_interval). With configured feature networks, the
Frechet distances as the reconstruction metrics compute them (vitok.fid): `gen_fid` on Inception features per
frame, `gen_fvd` on I3D features per clip (video). A network that is not configured gives no metric at all.
"""

from __future__ import annotations

from typing import Iterable

import torch

from vitok.fid import FeatureStats, frechet_distance, load_i3d, load_inception
from vitok.generation import PatchDescriptors, swd_between, swd_interval
from workflows.training.evaluation import pixels_to_model_input

LOADERS = {"gen_fid": load_inception, "gen_fvd": load_i3d}
JACKKNIFE_GROUPS = 10  # groups of samples left out in turn for the SWD's interval


@torch.no_grad()
def generation_metrics(
    samples: torch.Tensor,
    reals: Iterable[torch.Tensor],
    networks: dict[str, str],
    seed: int,
    batch_size: int,
    device: torch.device,
) -> dict[str, float]:
    """`samples` uint8 (N, T, H, W, 3); `reals` yields uint8 batches of the same shape (N rows in all);
    `networks` maps "gen_fid" / "gen_fvd" to TorchScript files. Returns the metrics and `gen_samples` (N)."""
    nets = {name: LOADERS[name](location).to(device) for name, location in networks.items()}
    sets = {"real": PatchDescriptors(seed=seed), "fake": PatchDescriptors(seed=seed + 1)}
    features = {name: {"real": FeatureStats(), "fake": FeatureStats()} for name in nets}

    def add(which: str, pixels: torch.Tensor) -> None:
        sets[which].update(pixels)
        for name, net in nets.items():
            features[name][which].update(net(pixels_to_model_input(pixels, device)))

    real_count = 0
    for batch in reals:
        add("real", batch)
        real_count += len(batch)
    if real_count != len(samples):  # the plan sized N to the held-out split, so this is a bug, not bad input
        raise RuntimeError(f"{real_count} held-out reals for {len(samples)} samples")
    for batch in samples.split(batch_size):
        add("fake", batch)
    swd = swd_between(sets["real"], sets["fake"], seed=seed)
    result = {f"gen_{key}": value for key, value in swd.items()}
    result["gen_swd_ci_low"], result["gen_swd_ci_high"] = swd_interval(
        sets["real"], sets["fake"], groups=min(JACKKNIFE_GROUPS, len(samples)), seed=seed)
    for name, stats in features.items():
        result[name] = frechet_distance(*stats["real"].mean_cov(), *stats["fake"].mean_cov())
    result["gen_samples"] = float(len(samples))
    return result
