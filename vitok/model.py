"""ViTok: a Vision-Transformer auto-encoder for images and videos (arXiv 2501.09755).

Input layout (fixed): pixels are float tensors (B, T, H, W, 3) in [-1, 1], channels last, exactly the layout of
the data shards' uint8 [T, H, W, 3] rows; an image is a clip with T = 1.

    x (B, T, H, W, 3)
      -> patchify: tubelets of q x p x p x 3 values       (B, T/q, H/p, W/p, q*p*p*3)
      -> linear embed (= 3D conv, kernel = stride)          L = (T/q)(H/p)(W/p) tokens
      -> encoder ViT (3D RoPE) -> norm -> linear to 2c      mean, logvar (clamped)
      -> diagonal Gaussian: z = mean + sigma * eps         (B, T/q, H/p, W/p, c); the mean in eval mode
      -> linear c -> width -> decoder ViT -> norm -> linear to q*p*p*3 -> unpatchify -> (B, T, H, W, 3)

The latent keeps its (T/q, H/p, W/p) grid, so `decode(z)` needs nothing but z.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.utils.checkpoint
from torch import nn

from .checkpoint import checkpoint_from_files, load_checkpoint, save_checkpoint
from .config import ViTokConfig, token_grid
from .layers import Block, make_norm
from .rope import rope_cos_sin


def patchify(x: torch.Tensor, q: int, p: int) -> torch.Tensor:
    """(B, T, H, W, C) -> (B, T/q, H/p, W/p, q*p*p*C), each token's values ordered (q, p, p, C)."""
    B, T, H, W, C = x.shape
    x = x.reshape(B, T // q, q, H // p, p, W // p, p, C)  # (B, t, q, h, p, w, p, C)
    x = x.permute(0, 1, 3, 5, 2, 4, 6, 7)  # (B, t, h, w, q, p, p, C)
    return x.reshape(B, T // q, H // p, W // p, q * p * p * C)


def unpatchify(tokens: torch.Tensor, q: int, p: int, channels: int = 3) -> torch.Tensor:
    """(B, t, h, w, q*p*p*C) -> (B, t*q, h*p, w*p, C); the inverse of `patchify`."""
    B, t, h, w, _ = tokens.shape
    x = tokens.reshape(B, t, h, w, q, p, p, channels)  # (B, t, h, w, q, p, p, C)
    x = x.permute(0, 1, 4, 2, 5, 3, 6, 7)  # (B, t, q, h, p, w, p, C)
    return x.reshape(B, t * q, h * p, w * p, channels)


class Transformer(nn.Module):
    """A stack of pre-norm blocks with a final norm; positions come in as RoPE tables."""

    def __init__(self, width: int, depth: int, heads: int, config: ViTokConfig):
        super().__init__()
        self.head_dim = width // heads
        self.theta = config.rope_theta
        hidden = int(config.mlp_ratio * width)
        self.blocks = nn.ModuleList(Block(width, heads, hidden, config.norm, config.norm_eps) for _ in range(depth))
        self.norm = make_norm(config.norm, width, config.norm_eps)
        self.activation_checkpointing = False  # set by ViTok.set_activation_checkpointing

    def forward(self, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        rope = rope_cos_sin(grid, self.head_dim, self.theta, x.device)  # each (L, head_dim/2), fp32
        for block in self.blocks:
            if self.activation_checkpointing and torch.is_grad_enabled():
                # keep only the block's input; its activations are recomputed in the backward pass
                x = torch.utils.checkpoint.checkpoint(block, x, rope, use_reentrant=False)
            else:
                x = block(x, rope)
        return self.norm(x)


class Encoder(nn.Module):
    """Tubelet embedding -> ViT -> per-token Gaussian moments (mean, logvar), 2c values per token."""

    def __init__(self, config: ViTokConfig):
        super().__init__()
        self.patch_embed = nn.Linear(config.patch_dim, config.encoder_width)
        self.transformer = Transformer(config.encoder_width, config.encoder_depth, config.encoder_heads, config)
        self.to_moments = nn.Linear(config.encoder_width, 2 * config.channels)

    def forward(self, patches: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """(B, L, q*p*p*3) -> (B, L, 2c)."""
        return self.to_moments(self.transformer(self.patch_embed(patches), grid))


class Decoder(nn.Module):
    """Latent projection -> ViT -> per-token pixels (q*p*p*3 values)."""

    def __init__(self, config: ViTokConfig):
        super().__init__()
        self.from_latent = nn.Linear(config.channels, config.decoder_width)
        self.transformer = Transformer(config.decoder_width, config.decoder_depth, config.decoder_heads, config)
        self.to_pixels = nn.Linear(config.decoder_width, config.patch_dim)

    def forward(self, z: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """(B, L, c) -> (B, L, q*p*p*3)."""
        return self.to_pixels(self.transformer(self.from_latent(z), grid))


@dataclass
class ViTokOutput:
    recon: torch.Tensor  # (B, T, H, W, 3) reconstruction
    z: torch.Tensor  # (B, T/q, H/p, W/p, c) latent fed to the decoder (sampled or the mean)
    mean: torch.Tensor  # (B, T/q, H/p, W/p, c) posterior mean
    logvar: torch.Tensor  # (B, T/q, H/p, W/p, c) posterior log-variance, clamped



class ViTok(nn.Module):
    def __init__(self, config: ViTokConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.encoder_frozen = False  # set by freeze_encoder() for stage 2
        self.init_weights()

    @classmethod
    def from_name(cls, name: str, channels: int = 16, **overrides) -> "ViTok":
        return cls(ViTokConfig.from_name(name, channels=channels, **overrides))

    def freeze_encoder(self) -> "ViTok":
        """Stage 2: the tubelet embedding, encoder ViT and moments head stop learning.

        Their parameters lose requires_grad, they stay in eval mode through later `train()` calls, and the
        encoder runs under no_grad, so neither optimiser steps nor weight decay can move them.
        """
        self.encoder_frozen = True
        self.encoder.requires_grad_(False)
        self.encoder.eval()
        return self

    def set_activation_checkpointing(self, enabled: bool = True) -> "ViTok":
        """Recompute each transformer block's activations in the backward pass instead of storing them:
        about one more forward of compute for activation memory that no longer grows with depth."""
        self.encoder.transformer.activation_checkpointing = enabled
        self.decoder.transformer.activation_checkpointing = enabled
        return self

    def train(self, mode: bool = True) -> "ViTok":
        super().train(mode)
        if self.encoder_frozen:
            self.encoder.eval()
        return self

    def init_weights(self) -> None:
        """All initialisation in one place: Xavier linears, zero biases, unit norms, zero pixel head."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        # As DiT's final layer: the decoder starts by predicting mid-grey, so early gradients are not
        # dominated by large random reconstructions.
        nn.init.zeros_(self.decoder.to_pixels.weight)
        nn.init.zeros_(self.decoder.to_pixels.bias)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, 3) -> (B, T/q, H/p, W/p, q*p*p*3)."""
        return patchify(x, self.config.tubelet_size, self.config.patch_size)

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T/q, H/p, W/p, q*p*p*3) -> (B, T, H, W, 3)."""
        return unpatchify(tokens, self.config.tubelet_size, self.config.patch_size)

    def encode_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, H, W, 3) -> mean, logvar, each (B, T/q, H/p, W/p, c); logvar clamped."""
        if x.ndim != 5 or x.shape[-1] != 3:
            raise ValueError(f"expected pixels shaped (B, T, H, W, 3), got {tuple(x.shape)}")
        grid = token_grid(self.config, *x.shape[1:4])  # (T/q, H/p, W/p), raises if it does not tile
        patches = self.patchify(x).flatten(1, 3)  # (B, L, q*p*p*3)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.encoder_frozen):
            moments = self.encoder(patches, grid)  # (B, L, 2c)
        moments = moments.unflatten(1, grid)  # (B, T/q, H/p, W/p, 2c)
        mean, logvar = moments.chunk(2, dim=-1)
        return mean, logvar.clamp(self.config.logvar_min, self.config.logvar_max)

    @staticmethod
    def sample_latent(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Reparameterised draw from N(mean, exp(logvar))."""
        return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)

    def encode(self, x: torch.Tensor, sample: bool | None = None) -> torch.Tensor:
        """(B, T, H, W, 3) -> z (B, T/q, H/p, W/p, c); samples when `sample` (default: in training mode)."""
        mean, logvar = self.encode_moments(x)
        sample = self.training if sample is None else sample
        return self.sample_latent(mean, logvar) if sample else mean

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, T/q, H/p, W/p, c) -> x_hat (B, T, H, W, 3)."""
        if z.ndim != 5 or z.shape[-1] != self.config.channels:
            raise ValueError(f"expected latents shaped (B, t, h, w, {self.config.channels}), got {tuple(z.shape)}")
        grid = tuple(z.shape[1:4])
        tokens = self.decoder(z.flatten(1, 3), grid)  # (B, L, q*p*p*3)
        return self.unpatchify(tokens.unflatten(1, grid))

    def forward(self, x: torch.Tensor, sample: bool | None = None) -> ViTokOutput:
        mean, logvar = self.encode_moments(x)
        sample = self.training if sample is None else sample
        z = self.sample_latent(mean, logvar) if sample else mean
        return ViTokOutput(recon=self.decode(z), z=z, mean=mean, logvar=logvar)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write `model.safetensors` and `config.json` into `directory`."""
        return save_checkpoint(directory, self.config.to_dict(), self.state_dict())

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | torch.device = "cpu", endpoint_url: str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> "ViTok":
        """Load a checkpoint written by `save_pretrained` from a directory, file:// or s3:// URI (eval mode),
        with its weights in `dtype` (fp32 by default, whatever the file holds; run bf16 with autocast).

        s3:// is read through pyarrow; the endpoint comes from `endpoint_url` or AWS_ENDPOINT_URL.
        """
        return cls._from_checkpoint(*load_checkpoint(path, endpoint_url), device, dtype)

    @classmethod
    def from_files(
        cls, files: dict[str, bytes], device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> "ViTok":
        """As `from_pretrained`, from the bytes of the two files `save_pretrained` writes, keyed by file name
        (what Ray actors receive through the object store)."""
        return cls._from_checkpoint(*checkpoint_from_files(files), device, dtype)

    @classmethod
    def _from_checkpoint(cls, config: dict, state: dict[str, torch.Tensor], device: str | torch.device,
                         dtype: torch.dtype) -> "ViTok":  # fmt: skip
        with torch.device("meta"):  # skip the random init that the loaded weights would overwrite
            model = cls(ViTokConfig.from_dict(config))
        model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, assign=True)
        return model.to(device).eval()
