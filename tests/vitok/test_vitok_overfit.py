"""A tiny ViTok overfits a few smooth images (and clips): the full stage-1 training step learns."""

import math

import pytest
import torch

from vitok import ViTok
from vitok.losses import stage1_loss
from vitok.metrics import psnr


def smooth_clips(n: int, frames: int, size: int, seed: int = 0) -> torch.Tensor:
    """(n, frames, size, size, 3) in [-1, 1]: random low-frequency sinusoids drifting over time."""
    g = torch.Generator().manual_seed(seed)
    axis = torch.linspace(0, 1, size)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    clips = []
    for _ in range(n):
        freq, phase = torch.rand(3, 2, generator=g) * 3 + 0.5, torch.rand(3, 2, generator=g) * 2 * math.pi
        frames_ = []
        for t in range(frames):
            channels = [
                0.8 * torch.sin(freq[c, 0] * math.pi * xx + phase[c, 0] + 0.3 * t)
                * torch.cos(freq[c, 1] * math.pi * yy + phase[c, 1])
                for c in range(3)
            ]
            frames_.append(torch.stack(channels, dim=-1))  # (size, size, 3)
        clips.append(torch.stack(frames_))
    return torch.stack(clips)


@pytest.mark.parametrize("name,frames,steps,target_db", [("N-N/8", 1, 60, 30.0), ("N-N/2x8", 2, 60, 28.0)])
def test_tiny_model_overfits(name, frames, steps, target_db):
    torch.manual_seed(0)
    x = smooth_clips(4, frames, 32)
    model = ViTok.from_name(name)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.0)

    def eval_psnr() -> float:
        model.eval()
        with torch.no_grad():
            return psnr(model(x).recon, x)

    start = eval_psnr()
    model.train()
    for _ in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
        loss = stage1_loss(out, x)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    end = eval_psnr()
    print(f"{name}: PSNR {start:.1f} -> {end:.1f} dB")
    assert end > start + 10 and end > target_db, (start, end)
