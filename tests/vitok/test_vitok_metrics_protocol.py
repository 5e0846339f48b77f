"""The evaluation protocol against scikit-image on real photographs: reconstructions quantised to uint8, then
PSNR and SSIM as scikit-image computes them (SSIM within 1e-4, PSNR within 1e-3 dB)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from vitok.metrics import per_sample, psnr_per_frame, quantize_uint8, ssim_per_frame


PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png", "coins.png")


def real_photos(size: int) -> np.ndarray:
    """(24, size, size, 3) uint8: four corner crops of each of six photographs inside scikit-image."""
    folder = Path(skimage.data.__file__).parent
    crops = []
    for name in PHOTOS:
        with Image.open(folder / name) as im:
            im = im.convert("RGB").resize((2 * size, 2 * size), Image.BICUBIC)
            for left, top in ((0, 0), (size, 0), (0, size), (size, size)):
                crops.append(np.array(im.crop((left, top, left + size, top + size))))
    return np.stack(crops)


def _distorted(photos: np.ndarray, seed: int) -> torch.Tensor:
    """The photos in [-1, 1] with blur-like and noise distortions, as float (not yet quantised)."""
    x = torch.from_numpy(photos).float().div(127.5).sub(1.0)  # (N, H, W, 3)
    rng = torch.Generator().manual_seed(seed)
    smooth = (x + torch.roll(x, 1, dims=1) + torch.roll(x, 1, dims=2)) / 3
    return (smooth + 0.05 * torch.randn(x.shape, generator=rng)).clamp(-1.2, 1.2)


def test_psnr_and_ssim_equal_scikit_image_on_uint8():
    photos = real_photos(64)
    recon = _distorted(photos, seed=0)
    target = torch.from_numpy(photos)[:, None]  # (N, 1, H, W, 3)
    ours_psnr = psnr_per_frame(recon[:, None], target).numpy()
    ours_ssim = ssim_per_frame(recon[:, None], target).numpy()
    recon_u8 = quantize_uint8(recon).numpy()
    for i in range(len(photos)):
        ref_ssim = structural_similarity(photos[i], recon_u8[i], gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False, data_range=255, channel_axis=-1)
        ref_psnr = peak_signal_noise_ratio(photos[i], recon_u8[i], data_range=255)
        assert abs(ours_ssim[i] - ref_ssim) < 1e-4
        assert abs(ours_psnr[i] - ref_psnr) < 1e-3


def test_per_sample_is_the_mean_over_a_clips_frames():
    clips = torch.rand(2, 3, 16, 16, 3) * 2 - 1
    recon = (clips + 0.1).clamp(-1, 1)
    frames = psnr_per_frame(recon, clips)
    assert frames.shape == (6,)
    torch.testing.assert_close(per_sample(frames, 2), frames.view(2, 3).mean(1))
