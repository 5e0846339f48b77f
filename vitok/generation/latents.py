"""Latent normalisation: the statistics the latent cache writes to `latent_stats.json`, and how to apply them.

The file is one JSON object; these fields are read (others, e.g. a count or the split, are allowed and ignored):

    mean          list of c floats: mean of each latent channel over every train-split latent cell
    std           list of c floats: standard deviation of each channel over the same cells (population, ddof 0)
    scale_factor  one float: 1 / standard deviation of all latent values together (ddof 0, about their mean),
                  the single factor of Stable Diffusion's VAE recipe (0.18215 for SD's VAE)
    shift_factor  optional float, default 0: the mean of all latent values together (SD3's "shift_factor")

(the latent cache, workflows/latents/stats.py, writes them; the dataclass below names them channel_mean,
channel_std, scale and shift)

A latent cell is one (t, h, w) position of one sample's (T', H', W', c) latent. Two normalisations use them:

    "channel"  z_n = (z - channel_mean) / channel_std   each channel zero-mean, unit-variance (LightningDiT)
    "scale"    z_n = (z - shift) * scale                one shift and factor for all channels (SD; shift 0 is
                                                        SD 1/2's z * scale, the global mean is SD3's)

A diffusion model trained on raw latents whose scale is far from the unit-variance noise it starts from
samples badly (the known "gFID above 100" failure), so every generator run normalises with one of these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

MODES = ("channel", "scale")


@dataclass(frozen=True)
class LatentStats:
    channel_mean: tuple[float, ...]  # (c,) mean of each latent channel
    channel_std: tuple[float, ...]  # (c,) population std of each latent channel
    scale: float  # 1 / population std of all latent values together
    shift: float = 0.0  # subtracted before `scale` in "scale" mode: 0, or the mean of all latent values

    def __post_init__(self) -> None:
        if len(self.channel_mean) != len(self.channel_std) or not self.channel_mean:
            raise ValueError(f"channel_mean ({len(self.channel_mean)}) and channel_std ({len(self.channel_std)}) "
                             "must list the same, non-zero number of channels")  # fmt: skip
        if min(self.channel_std) <= 0 or self.scale <= 0:
            raise ValueError("channel_std and scale must be positive")

    @property
    def channels(self) -> int:
        return len(self.channel_mean)

    @classmethod
    def from_latents(cls, latents: torch.Tensor) -> "LatentStats":
        """Statistics of latents (..., c), e.g. (N, T', H', W', c), computed in float64."""
        cells = latents.detach().to(torch.float64).reshape(-1, latents.shape[-1])  # (cells, c)
        return cls(
            channel_mean=tuple(cells.mean(0).tolist()),
            channel_std=tuple(cells.std(0, correction=0).tolist()),
            scale=float(1.0 / cells.std(correction=0)),
            shift=float(cells.mean()),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LatentStats":
        """From `latent_stats.json`'s fields (module docstring)."""
        missing = [key for key in ("mean", "std", "scale_factor") if data.get(key) is None]
        if missing:
            raise ValueError(f"latent stats lack {missing}: expected mean, std, scale_factor (and shift_factor)")
        return cls(tuple(map(float, data["mean"])), tuple(map(float, data["std"])),
                   float(data["scale_factor"]), float(data.get("shift_factor") or 0.0))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"mean": list(self.channel_mean), "std": list(self.channel_std),
                "scale_factor": self.scale, "shift_factor": self.shift}  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> "LatentStats":
        """Read a local `latent_stats.json` (workflows fetch remote copies first)."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def _affine(self, latents: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(shift, divisor) of `mode` as fp32 tensors broadcasting over latents (..., c)."""
        if mode not in MODES:
            raise ValueError(f"unknown normalisation {mode!r}: choose one of {MODES}")
        if latents.shape[-1] != self.channels:
            raise ValueError(f"latents have {latents.shape[-1]} channels, the stats {self.channels}")
        device = latents.device
        if mode == "scale":
            return torch.tensor(self.shift, device=device), torch.tensor(1.0 / self.scale, device=device)
        mean = torch.tensor(self.channel_mean, device=device, dtype=torch.float32)
        return mean, torch.tensor(self.channel_std, device=device, dtype=torch.float32)

    def normalize(self, latents: torch.Tensor, mode: str = "channel") -> torch.Tensor:
        """Tokenizer latents (..., c) -> the unit-scale space the generator is trained in (fp32 math)."""
        shift, divisor = self._affine(latents, mode)
        return ((latents.float() - shift) / divisor).type_as(latents)

    def denormalize(self, latents: torch.Tensor, mode: str = "channel") -> torch.Tensor:
        """The inverse of `normalize`: generator samples -> latents for `ViTok.decode`."""
        shift, divisor = self._affine(latents, mode)
        return (latents.float() * divisor + shift).type_as(latents)
