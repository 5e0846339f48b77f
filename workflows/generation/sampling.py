"""The N samples of a generator run: drawn by the DiT's flow, denormalised and decoded by the tokenizer to uint8
pixels, shared out over the ranks and gathered on rank 0.

Sample i is the same whatever the number of workers: its noise comes from its own seed (seed, i) and its class
(class-conditional runs) is the i-th of the train classes in turn, so every class the DiT was trained on is
drawn about equally often. Each rank draws a contiguous share of the indices; rank 0 puts them back in order.
Pixels are quantised to uint8 before any metric, as a saved image would be.
"""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist
from torch import nn

from vitok import ViTok
from vitok.generation import LatentStats, sample
from vitok.metrics import quantize_uint8

NOISE_SEED_BASE = 1_000_003  # sample i's noise comes from seed * NOISE_SEED_BASE + i


def share(count: int, rank: int, world: int) -> range:
    """The indices of `count` samples that rank `rank` of `world` draws: a contiguous block, sizes within one."""
    return range(rank * count // world, (rank + 1) * count // world)


def initial_noise(indices: range, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """(len(indices), *shape) fp32 standard normal noise, sample i from its own generator."""
    noise = [torch.randn(shape, generator=torch.Generator().manual_seed(seed * NOISE_SEED_BASE + i)) for i in indices]
    return torch.stack(noise) if noise else torch.empty(0, *shape)


def precision_context(device: torch.device, precision: str):
    """bf16 autocast in a bf16 run (weights stay fp32), nothing in an fp32 one."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


@torch.no_grad()
def generate(
    dit: nn.Module,
    tokenizer: ViTok,
    stats: LatentStats,
    indices: range,
    classes: tuple[int, ...],
    latent_shape: tuple[int, ...],
    *,
    normalization: str,
    method: str,
    steps: int,
    cfg_scale: float,
    seed: int,
    batch_size: int,
    precision: str,
    device: torch.device,
) -> torch.Tensor:
    """uint8 (len(indices), T, H, W, 3) pixels of the samples `indices`, on the CPU.

    `classes` empty: an unconditional DiT (cfg_scale must then be 1).
    """
    null_class = dit.config.null_class
    out = []
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        noise = initial_noise(chunk, latent_shape, seed).to(device)
        labels = torch.tensor([classes[i % len(classes)] for i in chunk], device=device) if classes else None
        with precision_context(device, precision):
            normalised = sample(dit, noise, labels, steps=steps, method=method, cfg_scale=cfg_scale,
                                null_class=null_class)  # fmt: skip
        latents = stats.denormalize(normalised.float(), normalization)
        with precision_context(device, precision):
            pixels = tokenizer.decode(latents)
        out.append(quantize_uint8(pixels.float().clamp(-1, 1)).cpu())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.uint8)


def gather_on_rank0(samples: torch.Tensor, rank: int, world: int) -> torch.Tensor | None:
    """Every rank's samples concatenated in rank order on rank 0 (None on the others).

    Rank 0 then holds N x T x H x W x 3 bytes (10k images at 256p: 2 GB), which the metrics need together.
    """
    if world == 1:
        return samples
    parts: list[torch.Tensor] | None = [None] * world if rank == 0 else None  # type: ignore[list-item]
    dist.gather_object(samples, parts, dst=0)
    return torch.cat([part for part in parts if len(part)]) if rank == 0 else None  # N < world leaves some empty
