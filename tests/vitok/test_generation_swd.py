"""Multi-scale sliced Wasserstein distance: the pyramid equals the reference code's (scipy), the 1-D case equals
the exact Wasserstein-1 distance, and on toy distributions the ordering is the known one: a distribution is
closer to a fresh draw of itself than to a blurred version, which is closer than noise; more perturbation,
more distance."""

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from scipy import ndimage, stats

from vitok.generation import multiscale_swd
from vitok.generation.swd import laplacian_pyramid, pyr_up, pyramid_resolutions, sliced_wasserstein, to_pixels

# The reference implementation's filter and pyramid (progressive_growing_of_gans/metrics/sliced_wasserstein.py).
REF_FILTER = np.float32([[1, 4, 6, 4, 1], [4, 16, 24, 16, 4], [6, 24, 36, 24, 6], [4, 16, 24, 16, 4], [1, 4, 6, 4, 1]])
REF_FILTER /= 256.0


def ref_pyr_down(m):
    return ndimage.convolve(m, REF_FILTER[None, None], mode="mirror")[:, :, ::2, ::2]


def ref_pyr_up(m):
    res = np.zeros((m.shape[0], m.shape[1], m.shape[2] * 2, m.shape[3] * 2), m.dtype)
    res[:, :, ::2, ::2] = m
    return ndimage.convolve(res, REF_FILTER[None, None] * 4.0, mode="mirror")


def ref_laplacian_pyramid(m, levels):
    pyramid = [np.float32(m)]
    for _ in range(1, levels):
        pyramid.append(ref_pyr_down(pyramid[-1]))
        pyramid[-2] -= ref_pyr_up(pyramid[-1])
    return pyramid


def test_pyramid_matches_reference_code_and_reconstructs():
    x = np.random.default_rng(0).uniform(0, 255, (2, 3, 32, 48)).astype(np.float32)
    ours = laplacian_pyramid(torch.from_numpy(x), 3)
    for level, ref in zip(ours, ref_laplacian_pyramid(x.copy(), 3)):
        np.testing.assert_allclose(level.numpy(), ref, atol=1e-3)
    assert [tuple(level.shape[-2:]) for level in ours] == [(32, 48), (16, 24), (8, 12)]
    rebuilt = ours[-1]
    for level in reversed(ours[:-1]):
        rebuilt = level + pyr_up(rebuilt, level.shape[-2:])
    np.testing.assert_allclose(rebuilt.numpy(), x, atol=1e-3)


def test_resolutions_and_pixel_conventions():
    assert pyramid_resolutions(256, 256) == [256, 128, 64, 32, 16]
    assert pyramid_resolutions(64, 96) == [64, 32, 16]
    with pytest.raises(ValueError, match="at least 16"):
        pyramid_resolutions(8, 64)
    u8 = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    torch.testing.assert_close(to_pixels(u8), to_pixels(torch.from_numpy(u8).float() / 127.5 - 1))
    assert to_pixels(np.zeros((2, 4, 16, 16, 3), np.uint8)).shape == (8, 3, 16, 16)  # frames folded
    with pytest.raises(ValueError, match="expected"):
        to_pixels(np.zeros((2, 16, 16), np.uint8))


def test_one_dimensional_case_is_exact_wasserstein_one():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 500), rng.gamma(2.0, 1.0, 500)
    # One dimension: every random unit direction is +1 or -1, and W1 is symmetric under the flip.
    swd = sliced_wasserstein(torch.from_numpy(a)[:, None], torch.from_numpy(b)[:, None], repeats=2, directions=4,
                             generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert swd == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)


@functools.cache
def photos() -> tuple[np.ndarray, ...]:
    """Four photographs that ship with scikit-image, 128x128 uint8."""
    skimage_data = pytest.importorskip("skimage.data")
    folder = Path(skimage_data.__file__).parent
    loaded = []
    for name in ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg"):
        with Image.open(folder / name) as im:
            loaded.append(np.asarray(im.convert("RGB").resize((128, 128), Image.BICUBIC)))
    return tuple(loaded)


def photo_crops(count: int, seed: int, size: int = 32) -> np.ndarray:
    """(count, size, size, 3) uint8: random crops of the photographs, a toy image distribution with real
    texture at every scale."""
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(count):
        photo = photos()[rng.integers(len(photos()))]
        top, left = rng.integers(0, 128 - size, 2)
        crops.append(photo[top : top + size, left : left + size])
    return np.stack(crops)


def blurred(images: np.ndarray, radius: float) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(radius))) for im in images])


def with_noise(images: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, images.shape)
    return np.clip(images + noise, 0, 255).astype(np.uint8)


def test_ordering_self_blur_noise():
    reals, fresh = photo_crops(96, seed=0), photo_crops(96, seed=1)
    noise = np.random.default_rng(2).integers(0, 256, fresh.shape, dtype=np.uint8)
    same = multiscale_swd(reals, fresh)
    blur = multiscale_swd(reals, blurred(fresh, 1.5))
    far = multiscale_swd(reals, noise)
    assert set(same) == {"swd_32", "swd_16", "swd"}
    print({k: (round(same[k], 1), round(blur[k], 1), round(far[k], 1)) for k in same})
    assert same["swd"] < blur["swd"] < far["swd"]
    assert same["swd_32"] < blur["swd_32"] < far["swd_32"]  # blur removes the finest band most
    assert multiscale_swd(reals, fresh) == same  # seeded: the same inputs give the same figure


def test_monotone_in_added_noise():
    reals, fresh = photo_crops(64, seed=3), photo_crops(64, seed=4)
    distances = [multiscale_swd(reals, with_noise(fresh, sigma, seed=5))["swd"] for sigma in (0, 4, 12, 36)]
    print(distances)
    assert all(a < b for a, b in zip(distances, distances[1:])), distances


def test_video_frames_fold_into_the_batch_and_inputs_are_checked():
    frames, other = photo_crops(32, seed=6), photo_crops(32, seed=7)
    clips, other_clips = frames.reshape(8, 4, 32, 32, 3), other.reshape(8, 4, 32, 32, 3)
    assert multiscale_swd(clips, other_clips) == multiscale_swd(frames, other)
    as_float = torch.from_numpy(other).float() / 127.5 - 1  # the [-1, 1] convention of the model
    assert multiscale_swd(frames, as_float)["swd"] == pytest.approx(multiscale_swd(frames, other)["swd"], rel=1e-4)
    with pytest.raises(ValueError, match="levels"):
        multiscale_swd(frames, photo_crops(8, seed=8, size=64))


def test_flat_images_are_far_not_nan():
    import numpy as np

    from vitok.generation import multiscale_swd

    rng = np.random.default_rng(0)
    varied = rng.integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    flat = np.full((8, 32, 32, 3), 128, dtype=np.uint8)
    result = multiscale_swd(varied, flat)
    assert np.isfinite(result["swd"]) and result["swd"] > multiscale_swd(varied, varied[::-1].copy())["swd"]


def test_the_interval_is_centred_on_the_value_and_separates_what_the_value_separates():
    from vitok.generation import PatchDescriptors, swd_between, swd_interval

    g = np.random.default_rng(0)
    real = g.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)

    def descriptors(images, seed):
        out = PatchDescriptors(seed=seed)
        out.update(images)
        return out

    def noisy(sd):
        return descriptors(np.clip(real + g.normal(0, sd, real.shape), 0, 255).astype(np.uint8), 1)

    reals = descriptors(real, 0)
    near, far = noisy(10), noisy(80)
    low, high = swd_interval(reals, near, groups=8)
    assert low < swd_between(reals, near)["swd"] < high
    assert (low + high) / 2 == pytest.approx(swd_between(reals, near)["swd"])
    far_low, _ = swd_interval(reals, far, groups=8)
    assert high < far_low  # far more noise: the intervals do not overlap
    clips = descriptors(g.integers(0, 256, (6, 3, 16, 16, 3), dtype=np.uint8), 0)
    assert (clips.items, clips.frames) == (6, 3)
    other = descriptors(g.integers(0, 256, (6, 3, 16, 16, 3), dtype=np.uint8), 1)
    low, high = swd_interval(clips, other, groups=3)  # whole clips are left out, frames stay together
    assert low <= high
    with pytest.raises(ValueError, match="equally many items"):
        swd_interval(reals, clips)
