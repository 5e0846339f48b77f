"""Per-channel latent statistics over the train split, merged exactly from per-unit moments.

Each unit records, for its train rows, the count of values per channel, their mean and M2 (the sum of
squared deviations from that mean), in float64 over the latents as stored (what a trainer will read).
Moments merge with Chan et al.'s pairwise update, which is numerically stable where a sum of squares
minus a squared sum is not; merging in unit-id order makes latent_stats.json the same bytes however the
units were scheduled, interrupted or resumed.

latent_stats.json gives what diffusion trainers normalise with: per channel `mean` and `std` (population
std, as numpy's default), and one scalar pair over all channels together: `shift_factor` (the mean) and
`scale_factor` (1 / std), as Stable Diffusion's VAEs publish them: z' = (z - shift_factor) * scale_factor.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Moments:
    count: int  # values per channel
    mean: np.ndarray  # (c,) float64
    m2: np.ndarray  # (c,) float64: sum of squared deviations from `mean`

    @classmethod
    def of(cls, latents: np.ndarray) -> Moments:
        """Moments of float latents shaped (..., c)."""
        values = latents.reshape(-1, latents.shape[-1]).astype(np.float64)
        mean = values.mean(axis=0) if len(values) else np.zeros(values.shape[1])
        return cls(len(values), mean, ((values - mean) ** 2).sum(axis=0))

    def merge(self, other: Moments) -> Moments:
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / n)
        return Moments(n, mean, m2)

    def to_dict(self) -> dict:
        return {"count": self.count, "mean": self.mean.tolist(), "m2": self.m2.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Moments:
        return cls(d["count"], np.asarray(d["mean"], np.float64), np.asarray(d["m2"], np.float64))


def latent_stats(records: list[dict], channels: int) -> dict:
    """latent_stats.json for the train rows of `records` (merged in unit-id order)."""
    total = Moments(0, np.zeros(channels), np.zeros(channels))
    for record in sorted(records, key=lambda r: r["unit_id"]):
        total = total.merge(Moments.from_dict(record["train_moments"]))
    train_latents = sum(r["shard"]["train_rows"] for r in records if r["shard"])
    if total.count == 0:
        return {"split": "train", "train_latents": 0, "values_per_channel": 0, "mean": None, "std": None,
                "shift_factor": None, "scale_factor": None}  # fmt: skip
    # All channels pooled: the mean of the channel means (equal counts), and M2 about that pooled mean.
    pooled_mean = float(total.mean.mean())
    pooled_m2 = float(total.m2.sum() + (total.count * (total.mean - pooled_mean) ** 2).sum())
    pooled_std = (pooled_m2 / (total.count * channels)) ** 0.5
    return {
        "split": "train",
        "train_latents": train_latents,
        "values_per_channel": total.count,
        "mean": total.mean.tolist(),
        "std": np.sqrt(total.m2 / total.count).tolist(),
        "shift_factor": pooled_mean,
        "scale_factor": 1.0 / pooled_std if pooled_std > 0 else None,
        "std_all_channels": pooled_std,
    }
