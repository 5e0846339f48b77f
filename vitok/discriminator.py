"""StyleGAN-style discriminator for stage 2: residual downsampling conv blocks, minibatch std, leaky ReLU.

Works on single frames: video (B, T, H, W, 3) is folded to (B*T, H, W, 3), so the GAN term is per frame as in
the paper. A global average before the last linear makes it resolution-agnostic (StyleGAN flattens a fixed
4x4 map instead; averaging lets one discriminator serve every training resolution).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DiscriminatorConfig:
    base_channels: int = 64  # channels of the first block; doubled per block up to max_channels
    max_channels: int = 512  # channel cap
    num_blocks: int = 4  # residual blocks, each halving the resolution (input side must divide 2**num_blocks)
    mbstd_group: int = 4  # minibatch-std group size (StyleGAN2); 0 disables the feature
    negative_slope: float = 0.2  # leaky ReLU slope


class ResBlock(nn.Module):
    """conv3x3 -> lrelu -> conv3x3 -> lrelu -> avg-pool, plus a 1x1 pooled skip; sum scaled by 1/sqrt(2)
    so that the residual sum keeps unit variance (StyleGAN2's resnet discriminator)."""

    def __init__(self, cin: int, cout: int, slope: float):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, padding=1)
        self.conv2 = nn.Conv2d(cin, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv1(x), self.slope)
        y = F.avg_pool2d(F.leaky_relu(self.conv2(y), self.slope), 2)
        return (y + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2)


def minibatch_std(x: torch.Tensor, group: int) -> torch.Tensor:
    """Append one channel: the std over groups of samples, averaged over features (StyleGAN2)."""
    n, c, h, w = x.shape
    g = min(group, n)
    while n % g:  # the largest group size <= `group` that divides the batch
        g -= 1
    y = x.float().view(g, n // g, c, h, w)
    std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (n/g,)
    std = std.view(1, n // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)
    return torch.cat([x, std.type_as(x)], dim=1)


class Discriminator(nn.Module):
    """Images (N, H, W, 3) or clips (B, T, H, W, 3) in [-1, 1] -> one real/fake logit per frame, (N,) fp32."""

    def __init__(self, config: DiscriminatorConfig | None = None):
        super().__init__()
        self.config = config = config or DiscriminatorConfig()
        widths = [min(config.base_channels * 2**i, config.max_channels) for i in range(config.num_blocks + 1)]
        self.stem = nn.Conv2d(3, widths[0], 1)
        self.blocks = nn.ModuleList(
            ResBlock(widths[i], widths[i + 1], config.negative_slope) for i in range(config.num_blocks)
        )
        extra = 1 if config.mbstd_group else 0
        self.final_conv = nn.Conv2d(widths[-1] + extra, widths[-1], 3, padding=1)
        self.head = nn.Linear(widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim not in (4, 5) or x.shape[-1] != 3:
            raise ValueError(f"expected (N, H, W, 3) or (B, T, H, W, 3), got {tuple(x.shape)}")
        x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2)  # (N, 3, H, W), frames folded into the batch
        slope = self.config.negative_slope
        x = F.leaky_relu(self.stem(x), slope)
        for block in self.blocks:
            x = block(x)
        if self.config.mbstd_group:
            x = minibatch_std(x, self.config.mbstd_group)
        x = F.leaky_relu(self.final_conv(x), slope).mean(dim=(2, 3))  # (N, C)
        return self.head(x).squeeze(-1).float()
