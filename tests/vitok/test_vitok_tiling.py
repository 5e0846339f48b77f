"""vitok/tiling.py: tile layout, blend weights, exactness of a single tile, streaming order and seams."""

import numpy as np
import pytest
import torch

from bench.model.tiling import smooth_images, train_briefly
from vitok import ViTok
from vitok.tiling import (FrameLayout, Tiling, decode_stream, encode_stream, pad_clip, ramp, reconstruct_stream,
                          seam_ratio, tile_starts, to_model_range, to_uint8)


@pytest.fixture(scope="module")
def video_model() -> ViTok:
    """Random-init tiny video tokenizer (q = 2, p = 8) whose pixel head is not zero, so outputs vary."""
    torch.manual_seed(0)
    model = ViTok.from_name("N-N/2x8", channels=4)
    torch.nn.init.normal_(model.decoder.to_pixels.weight, std=0.05)
    return model.eval()


def random_clip(frames: int, height: int, width: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)


def test_tile_starts_cover_and_end_at_the_edge():
    assert tile_starts(100, 200, 8) == (0,)
    assert tile_starts(64, 32, 8) == (0, 24, 32)
    for length, tile, overlap in ((97, 32, 8), (256, 64, 16), (33, 32, 0)):
        starts = tile_starts(length, tile, overlap)
        assert starts[0] == 0 and starts[-1] + tile == length
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_neighbour_ramps_sum_to_one_over_their_overlap():
    a, b = ramp(16, 0, 6), ramp(16, 6, 0)
    assert torch.allclose(a[-6:] + b[:6], torch.ones(6))
    assert torch.equal(ramp(8, 0, 0), torch.ones(8))


def test_resolve_rounds_to_the_grid_and_refuses_overlaps_as_large_as_the_tile(video_model):
    assert Tiling(30, 5, 5, 1).resolve(video_model) == Tiling(32, 8, 6, 2)
    assert Tiling(64).resolve(video_model).overlap == 8  # default: an eighth of the tile
    with pytest.raises(ValueError, match="overlap"):
        Tiling(16, 16).resolve(video_model)


def test_one_tile_covering_everything_equals_untiled(video_model):
    clip = random_clip(7, 40, 52)  # neither multiple of p = 8 nor of q = 2: padded and cropped back
    tiled = np.stack(list(reconstruct_stream(video_model, clip, Tiling(64, 0, 8, 0).resolve(video_model))))
    layout = FrameLayout.plan(40, 52, Tiling(0), 8)
    with torch.no_grad():
        untiled = video_model.decode(video_model.encode(pad_clip(to_model_range(clip), layout, 2)[None]))
    assert np.array_equal(tiled, to_uint8(untiled[0, :7, :40, :52]))


def test_encode_then_decode_equals_reconstruct_and_keeps_the_frame_count(video_model):
    clip = random_clip(9, 24, 40)
    tiling = Tiling(16, 8, 4, 2).resolve(video_model)
    chunks = list(encode_stream(video_model, clip, tiling))
    assert [(c.start, c.frames) for c in chunks] == [(0, 4), (2, 4), (4, 4), (6, 3)]
    decoded = np.stack(list(decode_stream(video_model, chunks)))
    assert decoded.shape == clip.shape
    assert np.array_equal(decoded, np.stack(list(reconstruct_stream(video_model, clip, tiling))))


def test_streaming_reads_only_a_chunk_ahead(video_model):
    read = []

    def frames():
        for i, frame in enumerate(random_clip(12, 16, 16)):
            read.append(i)
            yield frame

    outputs = reconstruct_stream(video_model, frames(), Tiling(16, 0, 4, 2).resolve(video_model))
    next(outputs)
    assert len(read) <= 8  # the first chunk and the next (the lookahead that says which frames are final)


def test_overlap_hides_tile_borders():
    # Random weights reconstruct nothing, so their seams say nothing: a model fitted briefly to smooth images.
    model = train_briefly(steps=30, batches=lambda step: smooth_images(8, 32, 32, seed=step))
    image = to_uint8(smooth_images(1, 96, 128, seed=5)[0, 0])
    ratios = {}
    for overlap in (0, 16):
        tiling = Tiling(32, overlap).resolve(model)
        tiled = next(reconstruct_stream(model, [image], tiling))
        ratios[overlap] = seam_ratio(tiled, FrameLayout.plan(96, 128, tiling, 8), 8)
    assert ratios[0] > 1.2  # without overlap the borders stand out (1.29 measured)
    assert ratios[16] < 1.05  # with it they do not (0.99)
