"""DiT over tokenizer latents (Peebles & Xie 2023), for images and videos through one path.

Input layout: noisy latents (B, T', H', W', c) exactly as `ViTok.encode` returns them (images: T' = 1), a flow
time t (B,) in [0, 1] and, for a class-conditional model, labels y (B,) in [0, num_classes] where the index
`num_classes` is the null class that classifier-free guidance uses.

    x (B, T', H', W', c)
      -> patchify: q x p x p latent cells per token        (B, T'/q, H'/p, W'/p, q*p*p*c)
      -> linear embed + fixed 3D sin-cos position          (B, L, width)
      -> depth x adaLN-Zero block (3D RoPE attention, SwiGLU), conditioned on embed(t) + embed(y)
      -> adaLN final layer -> linear to q*p*p*c -> unpatchify -> velocity (B, T', H', W', c)

Differences from the DiT paper, and why:
- Positions: the fixed sin-cos embedding is the paper's, extended to (t, h, w) with the same frequency split as
  the tokenizer's RoPE; attention additionally uses that 3D axial RoPE (vitok/rope.py). RoPE alone would not
  do: its logits depend only on relative offsets, so from pure noise a token cannot tell where in the grid it
  is, while the latent it must move towards depends on position. (Measured: overfitting four photo latents
  without the sin-cos term ended at 2.4x the loss, with samples 5x farther from their targets.)
- The attention and SwiGLU MLP are the tokenizer's (vitok/layers.py): bias-free linears, hidden = 2.67 x width,
  which matches the paper's 4 x width GELU MLP in parameters and MACs to 0.2%.
- The network predicts the flow velocity (see flow.py), not noise plus a learned variance.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import load_checkpoint, save_checkpoint
from ..config import Size, StoredConfig
from ..layers import Attention, SwiGLU
from ..model import patchify, unpatchify
from ..rope import grid_positions, rope_angles, rope_cos_sin

# The DiT paper's S/B/L/XL, plus two tiny sizes of ours for CPU tests and smoke runs.
SIZES: dict[str, Size] = {
    "N": Size(64, 2, 2),
    "T": Size(128, 4, 4),
    "S": Size(384, 12, 6),
    "B": Size(768, 12, 12),
    "L": Size(1024, 24, 16),
    "XL": Size(1152, 28, 16),
}

# `DiT-S/2` (p = 2 latent cells per side, q = 1 frame per token) or `DiT-S/2x2` (q = 2 latent frames).
_NAME = re.compile(r"^DiT-(?P<size>[A-Za-z]+)/(?:(?P<q>\d+)x)?(?P<p>\d+)$", re.IGNORECASE)


@dataclass
class DiTConfig(StoredConfig):
    width: int = 384  # model dim
    depth: int = 12  # adaLN-Zero blocks
    heads: int = 6  # attention heads (width / heads must be even: RoPE rotates channel pairs)
    patch_size: int = 2  # p: latent cells per token along H' and W' (the paper uses 1, 2 or 4)
    temporal_patch: int = 1  # q: latent frames per token; 1 keeps every latent frame its own token row
    channels: int = 16  # c: latent channels, the tokenizer's c
    num_classes: int = 0  # labelled classes; 0 = unconditional (no label input at all)
    mlp_ratio: float = 2.67  # SwiGLU hidden = int(mlp_ratio * width), as the tokenizer's blocks
    freq_dim: int = 256  # sinusoidal features of the flow time fed to the time MLP (the paper's 256)
    time_scale: float = 1000.0  # t in [0, 1] is multiplied by this before the sinusoids (DiT's 1000 steps)
    rope_theta: float = 10000.0  # base frequency of the RoPE and of the sin-cos position embedding
    norm_eps: float = 1e-6  # epsilon of every LayerNorm
    name: str = ""  # the variant name this config came from, e.g. "DiT-XL/2" (informational)

    def __post_init__(self) -> None:
        if self.width % self.heads or (self.width // self.heads) % 2:
            raise ValueError(f"width {self.width} must split into {self.heads} heads of even size")
        if min(self.patch_size, self.temporal_patch, self.channels, self.depth) < 1:
            raise ValueError(
                f"patch_size {self.patch_size}, temporal_patch {self.temporal_patch}, channels {self.channels} "
                f"and depth {self.depth} must all be positive"
            )
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 = unconditional), got {self.num_classes}")

    @property
    def patch_dim(self) -> int:
        """Latent values per token: q * p * p * c."""
        return self.temporal_patch * self.patch_size * self.patch_size * self.channels

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def null_class(self) -> int | None:
        """The label that means "no class" (classifier-free guidance); None for an unconditional model."""
        return self.num_classes if self.num_classes else None

    def token_grid(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """The token grid (T'/q, H'/p, W'/p) of a latent grid, after checking that the patch tiles it."""
        q, p = self.temporal_patch, self.patch_size
        if frames < 1 or frames % q or height < 1 or height % p or width < 1 or width % p:
            raise ValueError(
                f"latent grid {frames}x{height}x{width} does not tile into {q}x{p}x{p} patches "
                f"(model {self.name or 'custom'})"
            )
        return frames // q, height // p, width // p

    @classmethod
    def from_name(cls, name: str, channels: int = 16, num_classes: int = 0, **overrides: Any) -> "DiTConfig":
        """Parse `DiT-{size}/{p}` or `DiT-{size}/{q}x{p}`, e.g. `DiT-XL/2`, `DiT-B/1`, `DiT-S/2x2`."""
        match = _NAME.match(name.strip()) if isinstance(name, str) else None
        valid = ", ".join(SIZES)
        size = match["size"].upper() if match else None
        if size not in SIZES:
            raise ValueError(f"bad DiT name {name!r}: expected 'DiT-{{size}}/{{p}}' or 'DiT-{{size}}/{{q}}x{{p}}' "
                             f"(e.g. 'DiT-XL/2', 'DiT-S/1x2') with sizes {valid}")  # fmt: skip
        s = SIZES[size]
        return cls(
            width=s.width, depth=s.depth, heads=s.heads,
            patch_size=int(match["p"]), temporal_patch=int(match["q"] or 1),
            channels=channels, num_classes=num_classes,
            name=f"DiT-{size}/{match['q'] + 'x' if match['q'] else ''}{match['p']}",
            **overrides,
        )  # fmt: skip



def sincos_position_embedding(grid: tuple[int, int, int], width: int, theta: float, device=None) -> torch.Tensor:
    """Fixed sin-cos embedding of every (t, h, w) token position: (L, width) fp32.

    The width // 2 (sin, cos) pairs are split across the three axes exactly as the RoPE pairs of a head are
    (rope.axis_pairs), so an image (t = 0) gets sin 0 / cos 1 on its time pairs, as frame 0 of a video does.
    """
    angles = rope_angles(grid_positions(grid, device), width, theta)  # (L, width // 2)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def timestep_features(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """DiT's sinusoidal timestep features: (B,) -> (B, dim) fp32, [cos | sin] over geometric frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs  # (B, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def modulated_norm(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, eps: float) -> torch.Tensor:
    """LayerNorm without affine weights (adaLN supplies them), in fp32, then x * (1 + scale) + shift.

    x (B, L, D); shift, scale (B, D), broadcast over tokens.
    """
    normed = F.layer_norm(x.float(), x.shape[-1:], eps=eps)
    return (normed * (1 + scale.float()[:, None]) + shift.float()[:, None]).type_as(x)


class TimestepEmbedder(nn.Module):
    """Flow time t in [0, 1] -> (B, width): sinusoidal features of t * time_scale, then a SiLU MLP."""

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.freq_dim, self.time_scale = config.freq_dim, config.time_scale
        self.mlp = nn.Sequential(
            nn.Linear(config.freq_dim, config.width), nn.SiLU(), nn.Linear(config.width, config.width)
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        features = timestep_features(t * self.time_scale, self.freq_dim)  # (B, freq_dim) fp32
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class DiTBlock(nn.Module):
    """adaLN-Zero block: x + gate * attn(modulate(norm(x))), then the same for the MLP.

    Shift, scale and gate of both branches come from the conditioning vector; the modulation layer starts at
    zero, so every block starts as the identity.
    """

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.eps = config.norm_eps
        self.attn = Attention(config.width, config.heads)
        self.mlp = SwiGLU(config.width, int(config.mlp_ratio * config.width))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(config.width, 6 * config.width))

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """x (B, L, D), cond (B, D) -> (B, L, D)."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(cond).chunk(6, dim=-1)  # each (B, D)
        x = x + gate1[:, None] * self.attn(modulated_norm(x, shift1, scale1, self.eps), rope)
        return x + gate2[:, None] * self.mlp(modulated_norm(x, shift2, scale2, self.eps))


class FinalLayer(nn.Module):
    """adaLN (shift, scale) then a linear to the q*p*p*c values of each token."""

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.eps = config.norm_eps
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(config.width, 2 * config.width))
        self.linear = nn.Linear(config.width, config.patch_dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, L, D), cond (B, D) -> (B, L, q*p*p*c)."""
        shift, scale = self.modulation(cond).chunk(2, dim=-1)  # each (B, D)
        return self.linear(modulated_norm(x, shift, scale, self.eps))


class DiT(nn.Module):
    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = config
        self.patch_embed = nn.Linear(config.patch_dim, config.width)
        self.time_embed = TimestepEmbedder(config)
        # One extra row: the null class, which classifier-free guidance feeds for the unconditional branch.
        self.label_embed = nn.Embedding(config.num_classes + 1, config.width) if config.num_classes else None
        self.blocks = nn.ModuleList(DiTBlock(config) for _ in range(config.depth))
        self.final = FinalLayer(config)
        self.init_weights()

    @classmethod
    def from_name(cls, name: str, channels: int = 16, num_classes: int = 0, **overrides: Any) -> "DiT":
        return cls(DiTConfig.from_name(name, channels=channels, num_classes=num_classes, **overrides))

    def init_weights(self) -> None:
        """All initialisation in one place, as DiT: Xavier linears with zero biases, N(0, 0.02) label table and
        time MLP, and zero adaLN modulations and output layer (adaLN-Zero), so the untrained model is the
        identity through every block and predicts zero velocity."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        if self.label_embed is not None:
            nn.init.normal_(self.label_embed.weight, std=0.02)
        nn.init.normal_(self.time_embed.mlp[0].weight, std=0.02)
        nn.init.normal_(self.time_embed.mlp[2].weight, std=0.02)
        for layer in [block.modulation[-1] for block in self.blocks] + [self.final.modulation[-1], self.final.linear]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def condition(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The conditioning vector of each sample: embed(t) (+ embed(y) when class-conditional), (B, width)."""
        cond = self.time_embed(t)
        if self.label_embed is None:
            if y is not None:
                raise ValueError("this DiT is unconditional (num_classes = 0): pass y=None")
            return cond
        if y is None:
            raise ValueError(
                f"this DiT is class-conditional: pass labels y in [0, {self.config.num_classes}] "
                f"({self.config.num_classes} = null class)"
            )
        return cond + self.label_embed(y)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Velocity of latents x (B, T', H', W', c) at flow times t (B,) with labels y (B,) -> (B, T', H', W', c)."""
        config = self.config
        if x.ndim != 5 or x.shape[-1] != config.channels:
            raise ValueError(f"expected latents shaped (B, T', H', W', {config.channels}), got {tuple(x.shape)}")
        grid = config.token_grid(*x.shape[1:4])  # (T'/q, H'/p, W'/p)
        q, p = config.temporal_patch, config.patch_size
        tokens = patchify(x, q, p).flatten(1, 3)  # (B, L, q*p*p*c)
        h = self.patch_embed(tokens)  # (B, L, width)
        h = h + sincos_position_embedding(grid, config.width, config.rope_theta, x.device).to(h.dtype)
        cond = self.condition(t.expand(x.shape[0]), y)  # (B, width); a scalar t is shared by the batch
        rope = rope_cos_sin(grid, config.head_dim, config.rope_theta, x.device)  # each (L, head_dim/2) fp32
        for block in self.blocks:
            h = block(h, cond, rope)
        out = self.final(h, cond)  # (B, L, q*p*p*c)
        return unpatchify(out.unflatten(1, grid), q, p, config.channels)  # (B, T', H', W', c)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write `model.safetensors` and `config.json` (DiTConfig fields) into `directory`."""
        return save_checkpoint(directory, self.config.to_dict(), self.state_dict())

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | torch.device = "cpu", endpoint_url: str | None = None
    ) -> "DiT":
        """Load a checkpoint written by `save_pretrained` (directory, file:// or s3:// URI), in eval mode."""
        config, state = load_checkpoint(path, endpoint_url)
        with torch.device("meta"):  # skip the random init that the loaded weights would overwrite
            model = cls(DiTConfig.from_dict(config))
        model.load_state_dict(state, assign=True)
        return model.to(device).eval()
