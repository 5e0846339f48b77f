"""ViTok configuration: the dataclass, the named sizes and the `{Enc}-{Dec}/{q}x{p}` name grammar."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, NamedTuple


class Size(NamedTuple):
    """One transformer size: width (model dim), depth (blocks), heads (attention heads)."""

    width: int
    depth: int
    heads: int


# Paper Table 1 (S, B, L) plus three tiny sizes of ours for CPU tests and studies: N(ano), T(iny) and
# M(ini), about 16x the parameters of N, so the tiny encoder/decoder scaling studies span a range like S -> L.
SIZES: dict[str, Size] = {
    "N": Size(64, 2, 2),
    "T": Size(128, 2, 4),
    "M": Size(192, 4, 6),
    "S": Size(768, 6, 12),
    "B": Size(768, 12, 12),
    "L": Size(1152, 24, 16),
}

# `S-B/16` (image, q = 1) or `S-B/4x8` (video: tubelet q = 4 frames, patch p = 8 pixels).
_NAME = re.compile(r"^(?P<enc>[A-Za-z]+)-(?P<dec>[A-Za-z]+)/(?:(?P<q>\d+)x)?(?P<p>\d+)$")


class StoredConfig:
    """`to_dict` / `from_dict` for a model config dataclass that a checkpoint stores as config.json: `from_dict`
    refuses fields it does not know, so a config written by another version is reported rather than half-read."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}")
        return cls(**data)


@dataclass
class ViTokConfig(StoredConfig):
    encoder_width: int = 768  # encoder model dim
    encoder_depth: int = 6  # encoder transformer blocks
    encoder_heads: int = 12  # encoder attention heads (width must divide evenly)
    decoder_width: int = 768  # decoder model dim
    decoder_depth: int = 12  # decoder transformer blocks
    decoder_heads: int = 12  # decoder attention heads
    patch_size: int = 16  # p: spatial side of one token's patch, in pixels
    tubelet_size: int = 1  # q: frames per token; 1 for images
    channels: int = 16  # c: latent channels per token, so E = L * c
    mlp_ratio: float = 2.67  # SwiGLU hidden = int(mlp_ratio * width), as in the paper
    norm: str = "layernorm"  # "layernorm" (paper) or "rmsnorm"
    norm_eps: float = 1e-6  # epsilon of every norm
    rope_theta: float = 10000.0  # RoPE base frequency
    logvar_min: float = -30.0  # clamp of the bottleneck log-variance: keeps exp() finite
    logvar_max: float = 20.0
    name: str = ""  # the variant name this config came from, e.g. "S-B/16" (informational)

    def __post_init__(self) -> None:
        if self.norm not in ("layernorm", "rmsnorm"):
            raise ValueError(f"norm must be 'layernorm' or 'rmsnorm', got {self.norm!r}")
        for side in ("encoder", "decoder"):
            width, heads = getattr(self, f"{side}_width"), getattr(self, f"{side}_heads")
            if width % heads or (width // heads) % 2:
                # RoPE rotates pairs of channels, so each head needs an even size
                raise ValueError(f"{side} width {width} must split into {heads} heads of even size")
        if min(self.patch_size, self.tubelet_size, self.channels) < 1:
            sizes = f"patch_size {self.patch_size}, tubelet_size {self.tubelet_size}, channels {self.channels}"
            raise ValueError(f"{sizes}: all must be positive")
        if self.logvar_min >= self.logvar_max:
            raise ValueError(f"logvar_min {self.logvar_min} must be below logvar_max {self.logvar_max}")

    @property
    def patch_dim(self) -> int:
        """Pixel values per token: q * p * p * 3."""
        return self.tubelet_size * self.patch_size * self.patch_size * 3

    @classmethod
    def from_name(cls, name: str, channels: int = 16, **overrides: Any) -> "ViTokConfig":
        """Parse `{Enc}-{Dec}/{q}x{p}` or `{Enc}-{Dec}/{p}` (q = 1), e.g. `S-B/16`, `B-L/4x16`."""
        match = _NAME.match(name.strip()) if isinstance(name, str) else None
        valid = ", ".join(SIZES)
        if match is None:
            raise ValueError(
                f"bad ViTok name {name!r}: expected '{{Enc}}-{{Dec}}/{{p}}' or '{{Enc}}-{{Dec}}/{{q}}x{{p}}' "
                f"(e.g. 'S-B/16', 'S-B/4x8') with sizes {valid}"
            )
        enc, dec = match["enc"].upper(), match["dec"].upper()
        for size in (enc, dec):
            if size not in SIZES:
                raise ValueError(f"unknown ViTok size {size!r} in {name!r}: valid sizes are {valid}")
        e, d = SIZES[enc], SIZES[dec]
        return cls(
            encoder_width=e.width, encoder_depth=e.depth, encoder_heads=e.heads,
            decoder_width=d.width, decoder_depth=d.depth, decoder_heads=d.heads,
            patch_size=int(match["p"]), tubelet_size=int(match["q"] or 1), channels=channels,
            name=f"{enc}-{dec}/{match['q'] + 'x' if match['q'] else ''}{match['p']}",
            **overrides,
        )



def token_grid(config: ViTokConfig, frames: int, height: int, width: int) -> tuple[int, int, int]:
    """The latent grid (T/q, H/p, W/p) of an input, after checking that it tiles exactly."""
    check_input_shape(config, frames, height, width)
    return frames // config.tubelet_size, height // config.patch_size, width // config.patch_size


def check_input_shape(config: ViTokConfig, frames: int, height: int, width: int) -> None:
    """Raise ValueError unless tubelet q divides frames and patch p divides height and width."""
    q, p = config.tubelet_size, config.patch_size
    if frames < 1 or frames % q:
        raise ValueError(f"tubelet {q} does not divide frames {frames} (model {config.name or 'custom'})")
    for axis, size in (("height", height), ("width", width)):
        if size < 1 or size % p:
            raise ValueError(f"patch {p} does not divide {axis} {size} (model {config.name or 'custom'})")
