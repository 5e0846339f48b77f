"""Analytic size and compute of a ViTok configuration, in the paper's units.

Parameters are counted from the real module (built on the meta device, so an L-size model costs no memory).
Compute is multiply-accumulates (MACs) of one forward pass of one sample, x 1e-9; the paper calls these
"GFLOPs". With L tokens, D = q*p*p*3 pixel values per token, c latent channels, and per transformer of
width w, depth n and SwiGLU hidden h = int(2.67 w):

    block       = L * (4 w^2 + 3 w h)      qkv (3 w^2) + output projection (w^2) + SwiGLU (3 w h)
                + 2 * L^2 * w              attention scores Q K^T and the weighted sum A V
    encoder     = L * D * w_e + n_e * block(w_e) + L * w_e * 2c
    decoder     = L * c * w_d + n_d * block(w_d) + L * w_d * D

Norms, softmax, RoPE, biases and the Gaussian sample are ignored (well under 1% here).

This reproduces the paper's image counts (S-B/16 at 256p: 34.76). For S-B/4x16 on 16x128x128 it gives 35.67
against the paper's 34.8 (+2.5%), and we keep the true count: that input also has L = 256 tokens, so the
transformers cost the same as S-B/16 at 256p, but each token now carries D = 4*16*16*3 = 3072 pixel values,
so the tubelet embedding and pixel head cost L * D * (w_e + w_d) = 256 * 3072 * 1536 = 1.21 GMACs. The paper's
34.8 is its 256p image figure, i.e. those two projections counted at an image patch's D = 768 (0.30 GMACs);
the 0.91 GMACs in between is the whole difference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .config import ViTokConfig, token_grid
from .model import ViTok


def transformer_macs(tokens: int, width: int, depth: int, mlp_ratio: float) -> int:
    """MACs of `depth` pre-norm blocks over `tokens` tokens (see the module docstring)."""
    hidden = int(mlp_ratio * width)
    linear = tokens * (4 * width * width + 3 * width * hidden)
    attention = 2 * tokens * tokens * width
    return depth * (linear + attention)


def forward_macs(config: ViTokConfig, tokens: int) -> tuple[int, int]:
    """(encoder MACs, decoder MACs) of one sample with `tokens` tokens."""
    c, d, ratio = config.channels, config.patch_dim, config.mlp_ratio
    we, wd = config.encoder_width, config.decoder_width
    encoder = tokens * d * we + transformer_macs(tokens, we, config.encoder_depth, ratio) + tokens * we * 2 * c
    decoder = tokens * c * wd + transformer_macs(tokens, wd, config.decoder_depth, ratio) + tokens * wd * d
    return encoder, decoder


def _numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass(frozen=True)
class ModelStats:
    """Size, compute and compression of a ViTok configuration on one input shape."""

    name: str
    params: int
    encoder_params: int
    decoder_params: int
    gmacs: float  # one forward pass of one sample, x 1e-9 (the paper's "GFLOPs")
    encoder_gmacs: float
    decoder_gmacs: float
    tokens: int  # L
    channels: int  # c
    E: int  # L * c, the latent's size
    input: tuple[int, int, int]  # (frames, height, width)
    patch: int  # p
    tubelet: int  # q

    def to_dict(self) -> dict:
        """JSON-ready, the input as a list."""
        return {**asdict(self), "input": list(self.input)}


def model_stats(config: ViTokConfig, frames: int = 1, height: int = 256, width: int = 256) -> ModelStats:
    """Size, compute and compression of `config` on inputs of frames x height x width."""
    t, h, w = token_grid(config, frames, height, width)  # raises ValueError if the input does not tile
    tokens = t * h * w
    with torch.device("meta"):
        model = ViTok(config)
    encoder_macs, decoder_macs = forward_macs(config, tokens)
    return ModelStats(
        name=config.name or "custom",
        params=_numel(model),
        encoder_params=_numel(model.encoder),
        decoder_params=_numel(model.decoder),
        gmacs=round((encoder_macs + decoder_macs) * 1e-9, 4),
        encoder_gmacs=round(encoder_macs * 1e-9, 4),
        decoder_gmacs=round(decoder_macs * 1e-9, 4),
        tokens=tokens,
        channels=config.channels,
        E=tokens * config.channels,
        input=(frames, height, width),
        patch=config.patch_size,
        tubelet=config.tubelet_size,
    )
