"""Small networks shaped like the feature extractors that weights.inception and weights.i3d name (TorchScript,
made in the tests), so rFID, rFVD, gFID and gFVD run end to end without downloading weights."""

from __future__ import annotations

import torch
from torch import nn


class TinyInception(nn.Module):
    """Inception-shaped: (N, 3, H, W) float pixels in [0, 255], `return_features` -> (N, 8) features."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2)

    def forward(self, x: torch.Tensor, return_features: bool = True) -> torch.Tensor:
        return torch.tanh(self.conv(x / 255.0)).mean(dim=(2, 3))


class TinyI3D(nn.Module):
    """I3D-shaped: (N, 3, T, H, W) float pixels in [0, 255] -> (N, 6) features."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 6, (2, 3, 3))

    def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True, return_features: bool = True):
        x = x / 127.5 - 1.0 if rescale else x
        return torch.tanh(self.conv(x)).mean(dim=(2, 3, 4))
