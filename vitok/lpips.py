"""LPIPS perceptual distance (Zhang et al. 2018) with a VGG16 trunk written in plain torch (no torchvision).

Weights cannot be downloaded here, so they come from a file: `LPIPS.from_path(path_or_s3_uri)` reads a
safetensors or torch state dict with this key layout (shapes for the standard VGG16 + LPIPS v0.1 "lin"):

    features.{i}.weight / .bias   VGG16 convolutions at torchvision's `vgg16().features` indices
                                  i in 0 2 5 7 10 12 14 17 19 21 24 26 28 (3x3 kernels)
    lins.{k}.weight               k in 0..4: the 1x1 LPIPS heads, shape (1, C_k, 1, 1), C = 64 128 256 512 512

`convert_state_dict` builds that layout from torchvision's VGG16 state dict plus the `lpips` package's
`vgg.pth` (keys `lin{k}.model.1.weight`), or from an `lpips.LPIPS` state dict (keys `net.slice*.N.*`).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

# VGG16 "D" configuration: conv widths, "M" = 2x2 max-pool. Indices in the Sequential match torchvision's.
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
# Sequential indices of the ReLUs whose outputs LPIPS compares: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
TAPS = (3, 8, 15, 22, 29)
TAP_CHANNELS = (64, 128, 256, 512, 512)
# LPIPS's input scaling layer: ImageNet statistics expressed for inputs in [-1, 1].
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG16_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU()]
            channels = item
    return nn.Sequential(*layers)


def _unit_normalize(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Normalise each spatial feature vector to unit length over channels."""
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """Frozen perceptual distance. Inputs (N, H, W, 3) or (B, T, H, W, 3) in [-1, 1]; returns the mean over
    images (frames folded into the batch), differentiable with respect to both inputs."""

    def __init__(self):
        super().__init__()
        self.features = vgg16_features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in TAP_CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_path(cls, path: str | Path, endpoint_url: str | None = None) -> "LPIPS":
        """Load weights from a local path, file:// or s3:// URI (layout in the module docstring)."""
        from .checkpoint import load_state_dict

        model = cls()
        model.load_state_dict(convert_state_dict(load_state_dict(path, endpoint_url)))
        return model

    def train(self, mode: bool = True) -> "LPIPS":
        return super().train(False)  # a fixed metric: never in training mode

    def _trunk(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for i, layer in enumerate(self.features[: TAPS[-1] + 1]):
            x = layer(x)
            if i in TAPS:
                taps.append(x)
        return taps

    def per_image(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distance of each image pair: (..., H, W, 3) twice -> (N,) with N the product of leading dims."""
        if a.shape != b.shape or a.shape[-1] != 3 or a.ndim not in (4, 5):
            shapes = f"{tuple(a.shape)}, {tuple(b.shape)}"
            raise ValueError(f"expected matching (N, H, W, 3) or (B, T, H, W, 3), got {shapes}")
        n = a.shape[:-3].numel()
        x = torch.cat([a.reshape(n, *a.shape[-3:]), b.reshape(n, *b.shape[-3:])]).permute(0, 3, 1, 2)
        x = (x.float() - self.shift) / self.scale  # (2N, 3, H, W); the trunk runs as one batch
        total = x.new_zeros(n)
        for feats, lin in zip(self._trunk(x), self.lins):
            fa, fb = _unit_normalize(feats[:n].float()), _unit_normalize(feats[n:].float())
            total = total + lin((fa - fb).pow(2)).mean(dim=(1, 2, 3))  # spatial average of the weighted sq. diff
        return total

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.per_image(a, b).mean()


def convert_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map torchvision VGG16 / lpips-package key names onto LPIPS's layout; our own keys pass through.

    Accepted: `features.{i}.*` (ours and torchvision), `net.slice{s}.{i}.*` (lpips.LPIPS keeps torchvision's
    indices inside its slices), `lin{k}.model.1.weight` (lpips heads), `lins.{k}.weight` (ours). Classifier
    keys and anything else are dropped.
    """
    out = {}
    for key, value in state.items():
        if m := re.fullmatch(r"(?:features|net\.slice\d)\.(\d+)\.(weight|bias)", key):
            out[f"features.{m[1]}.{m[2]}"] = value
        elif m := re.fullmatch(r"(?:lins\.(\d)|lin(\d)\.model\.1)\.weight", key):
            out[f"lins.{m[1] or m[2]}.weight"] = value
    return out


def load_lpips(path: str | None, endpoint_url: str | None = None) -> LPIPS | None:
    """LPIPS from `path`, or None when no path is configured (the caller logs `lpips: off` once)."""
    if not path:
        return None
    return LPIPS.from_path(path, endpoint_url)
