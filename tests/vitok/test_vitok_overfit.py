"""A tiny ViTok overfits a few real photographs (and smooth clips): the full stage-1 training step learns."""

import math
from pathlib import Path

import numpy as np

import pytest
import torch
from PIL import Image

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


def real_photos(size: int) -> torch.Tensor:
    """(4, 1, size, size, 3) in [-1, 1]: centre crops of photographs that ship inside scikit-image."""
    skimage_data = pytest.importorskip("skimage.data")
    folder = Path(skimage_data.__file__).parent
    images = []
    for name in ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg"):
        with Image.open(folder / name) as im:
            im = im.convert("RGB")
            side = min(im.size)
            left, top = (im.width - side) // 2, (im.height - side) // 2
            im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
            images.append(torch.from_numpy(np.array(im)).float() / 127.5 - 1.0)
    return torch.stack(images)[:, None]


def overfit(model: ViTok, x: torch.Tensor, steps: int, lr: float, fused: bool = False) -> tuple[float, float]:
    """PSNR of `model` on x before and after `steps` full-batch AdamW steps on x in bf16 autocast, on x's device."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0, fused=fused)

    def eval_psnr() -> float:
        model.eval()
        with torch.no_grad():
            return psnr(model(x).recon, x)

    start = eval_psnr()
    model.train()
    for _ in range(steps):
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            out = model(x)
        loss = stage1_loss(out, x)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return start, eval_psnr()


@pytest.mark.parametrize(
    "name,data,steps,lr,target_db",
    [("N-N/8", "photos", 150, 5e-3, 30.0), ("N-N/2x8", "clips", 60, 2e-3, 28.0)],
)
def test_tiny_model_overfits(name, data, steps, lr, target_db):
    torch.manual_seed(0)
    x = real_photos(32) if data == "photos" else smooth_clips(4, 2, 32)
    start, end = overfit(ViTok.from_name(name), x, steps, lr)
    print(f"{name}: PSNR {start:.1f} -> {end:.1f} dB")
    assert end > start + 10 and end > target_db, (start, end)
