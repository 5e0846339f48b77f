"""Tiled and chunked inference: one model at any image size or clip length, in bounded memory.

Attention grows with the square of the token count, so large frames are cut into spatial tiles and long clips
into temporal chunks. Tiles and chunks overlap; each is encoded on its own (its latents do not depend on its
neighbours), decoded on its own, and the decoded pixels are blended with linear ramps across every overlap,
so neighbours fade into each other instead of meeting at a visible border.

Layout rules, all in pixels / frames of the padded input:
- frames are padded to a multiple of the patch p by repeating the edge pixels, clips to a multiple of the
  tubelet q by repeating the last frame; both are cropped off again after decoding;
- spatial tiles are `tile` wide with `overlap` shared with the previous tile; the last tile is moved back to
  end at the frame's edge (so every tile has the same size and overlaps its neighbour by at least `overlap`);
- temporal chunks start every `chunk - chunk_overlap` frames; the last one is shorter when the clip ends
  (its length is still a multiple of q). Chunk starts therefore never depend on the clip's length, which is
  what lets a clip be streamed without knowing how many frames it has.
A tile or chunk that covers the whole input gets weight 1 everywhere, so it equals untiled inference exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import torch

from .model import ViTok


@dataclass(frozen=True)
class Tiling:
    """Tile and chunk sizes; `tile=0` or `chunk=0` means one tile / one chunk covering everything.

    Defaults: 256-pixel tiles and 16-frame chunks, the image resolution and clip length of the paper-scale
    sweeps (workflows/configs/*_paper.yaml; the config does not record a model's training size). An
    overlap left as None becomes an eighth of the tile (32 pixels by default) and a quarter of the chunk (4
    frames). `resolve` rounds everything up to whole patches / tubelets.
    """

    tile: int = 256
    overlap: int | None = None
    chunk: int = 16
    chunk_overlap: int | None = None

    def resolve(self, model: ViTok) -> "Tiling":
        """These sizes rounded to the model's grid; raises ValueError when they cannot work."""
        p, q = model.config.patch_size, model.config.tubelet_size
        overlap = self.tile // 8 if self.overlap is None else self.overlap
        chunk_overlap = self.chunk // 4 if self.chunk_overlap is None else self.chunk_overlap
        rounded = Tiling(_round_up(self.tile, p), _round_up(overlap, p),
                         _round_up(self.chunk, q), _round_up(chunk_overlap, q))
        if rounded.tile and rounded.overlap >= rounded.tile:
            raise ValueError(f"tile overlap {rounded.overlap} must be smaller than the tile {rounded.tile}")
        if rounded.chunk and rounded.chunk_overlap >= rounded.chunk:
            raise ValueError(f"chunk overlap {rounded.chunk_overlap} must be smaller than the chunk {rounded.chunk}")
        return rounded


def _round_up(value: int, multiple: int) -> int:
    if value < 0:
        raise ValueError(f"tile and chunk sizes must not be negative, got {value}")
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class FrameLayout:
    """Where the spatial tiles of one (padded) frame lie; the same for every frame of a clip."""

    height: int  # original frame size
    width: int
    padded_height: int  # rounded up to a multiple of p
    padded_width: int
    tile_height: int
    tile_width: int
    starts_h: tuple[int, ...]
    starts_w: tuple[int, ...]

    @classmethod
    def plan(cls, height: int, width: int, tiling: Tiling, patch: int) -> "FrameLayout":
        ph, pw = _round_up(height, patch), _round_up(width, patch)
        th, tw = (min(tiling.tile or ph, ph), min(tiling.tile or pw, pw))
        return cls(height, width, ph, pw, th, tw,
                   tile_starts(ph, th, tiling.overlap), tile_starts(pw, tw, tiling.overlap))


def tile_starts(length: int, tile: int, overlap: int) -> tuple[int, ...]:
    """Starts of `tile`-long windows covering [0, length), stepping by tile - overlap; the last ends at length."""
    if tile >= length:
        return (0,)
    starts = list(range(0, length - tile, tile - overlap))
    return tuple(starts + [length - tile])


def ramp(length: int, lead: int, trail: int) -> torch.Tensor:
    """Blend weights of one window: rising over the `lead` values it shares with the previous window, falling
    over the `trail` values it shares with the next, 1 elsewhere. Two neighbours' ramps sum to 1 across their
    overlap, so the blend is a straight cross-fade."""
    weights = torch.ones(length)
    if lead:
        weights[:lead] *= torch.arange(1, lead + 1) / (lead + 1)
    if trail:
        weights[length - trail:] *= torch.arange(trail, 0, -1) / (trail + 1)
    return weights


def _neighbour_ramps(starts: tuple[int, ...], size: int) -> list[torch.Tensor]:
    """One ramp per window of `size`, from the overlaps with the windows before and after it."""
    ramps = []
    for i, start in enumerate(starts):
        lead = starts[i - 1] + size - start if i else 0
        trail = start + size - starts[i + 1] if i + 1 < len(starts) else 0
        ramps.append(ramp(size, lead, trail))
    return ramps


def to_model_range(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float32 in [-1, 1], the model's input range."""
    return torch.from_numpy(frames).float() / 127.5 - 1.0


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """float in [-1, 1] -> uint8, rounded and clipped."""
    return ((pixels + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def pad_clip(pixels: torch.Tensor, layout: FrameLayout, tubelet: int) -> torch.Tensor:
    """(T, H, W, 3) -> (T', H', W', 3): edge pixels repeated to the padded frame size, the last frame repeated
    to a multiple of the tubelet (edges rather than zeros: no artificial border for the encoder to see)."""
    frames = pixels.shape[0]
    pad_h, pad_w = layout.padded_height - pixels.shape[1], layout.padded_width - pixels.shape[2]
    if pad_h or pad_w:
        pixels = torch.cat([pixels, pixels[:, -1:].expand(-1, pad_h, -1, -1)], dim=1)
        pixels = torch.cat([pixels, pixels[:, :, -1:].expand(-1, -1, pad_w, -1)], dim=2)
    pad_t = _round_up(frames, tubelet) - frames
    if pad_t:
        pixels = torch.cat([pixels, pixels[-1:].expand(pad_t, -1, -1, -1)], dim=0)
    return pixels


@torch.no_grad()
def encode_tiles(model: ViTok, pixels: torch.Tensor, layout: FrameLayout) -> torch.Tensor:
    """Padded (T, H', W', 3) in [-1, 1] -> latents (nH, nW, T/q, th/p, tw/p, c), one tile at a time so that
    activation memory stays that of a single tile."""
    rows = []
    for y in layout.starts_h:
        row = [model.encode(pixels[None, :, y:y + layout.tile_height, x:x + layout.tile_width], sample=False)[0]
               for x in layout.starts_w]
        rows.append(torch.stack(row))
    return torch.stack(rows)


@torch.no_grad()
def decode_tiles(model: ViTok, latents: torch.Tensor, layout: FrameLayout) -> torch.Tensor:
    """Latents (nH, nW, t, h, w, c) -> padded frames (T, H', W', 3), tiles cross-faded over their overlaps."""
    ramps_h = _neighbour_ramps(layout.starts_h, layout.tile_height)
    ramps_w = _neighbour_ramps(layout.starts_w, layout.tile_width)
    frames = latents.shape[2] * model.config.tubelet_size
    total = torch.zeros(frames, layout.padded_height, layout.padded_width, 3)
    weight = torch.zeros(layout.padded_height, layout.padded_width, 1)
    for i, y in enumerate(layout.starts_h):
        for j, x in enumerate(layout.starts_w):
            tile = model.decode(latents[i, j][None])[0].float()  # (T, th, tw, 3)
            w = (ramps_h[i][:, None] * ramps_w[j][None, :])[..., None]  # (th, tw, 1)
            total[:, y:y + layout.tile_height, x:x + layout.tile_width] += tile * w
            weight[y:y + layout.tile_height, x:x + layout.tile_width] += w
    return total / weight


@dataclass(frozen=True)
class Chunk:
    """The latents of one temporal chunk: frames [start, start + frames) of the clip (before padding)."""

    start: int
    frames: int
    layout: FrameLayout
    latents: torch.Tensor  # (nH, nW, t, h, w, c)


def _windows(frames: Iterable[np.ndarray], tiling: Tiling) -> Iterator[tuple[int, np.ndarray]]:
    """(start, uint8 (n, H, W, 3)) windows of a frame stream, holding at most one chunk of frames at a time."""
    step = tiling.chunk - tiling.chunk_overlap if tiling.chunk else 0
    buffer: list[np.ndarray] = []
    start, covered = 0, 0  # covered: frames already inside an emitted chunk
    for frame in frames:
        buffer.append(frame)
        if tiling.chunk and len(buffer) == tiling.chunk:
            yield start, np.stack(buffer)
            covered = start + tiling.chunk
            buffer, start = buffer[step:], start + step
    if start + len(buffer) > covered:  # frames after the last full chunk (or a clip shorter than a chunk)
        yield start, np.stack(buffer)


def encode_stream(model: ViTok, frames: Iterable[np.ndarray], tiling: Tiling) -> Iterator[Chunk]:
    """uint8 frames (H, W, 3), streamed -> one `Chunk` of latents per temporal chunk, in order.

    `tiling` must already be resolved for `model`. Only one chunk of frames is held at a time.
    """
    layout = None
    for start, window in _windows(frames, tiling):
        if layout is None:
            layout = FrameLayout.plan(window.shape[1], window.shape[2], tiling, model.config.patch_size)
        padded = pad_clip(to_model_range(window), layout, model.config.tubelet_size)
        yield Chunk(start, len(window), layout, encode_tiles(model, padded, layout))


def decode_stream(model: ViTok, chunks: Iterable[Chunk]) -> Iterator[np.ndarray]:
    """Chunks in order -> uint8 frames (H, W, 3) cropped back to the original size and frame count, each
    yielded as soon as no later chunk can change it."""
    pending = pending_weight = None  # blended sums (and their weights) of decoded frames not yet final
    pending_start = 0
    chunk_iter = iter(chunks)
    current = next(chunk_iter, None)
    while current is not None:
        following = next(chunk_iter, None)  # one chunk of lookahead: its start bounds what is final now
        pixels = decode_tiles(model, current.latents, current.layout)  # (n, H', W', 3), n >= current.frames
        end = current.start + pixels.shape[0]
        lead = pending_start + len(pending) - current.start if pending is not None else 0
        trail = end - following.start if following is not None else 0
        w = ramp(pixels.shape[0], lead, trail)
        weighted = pixels * w[:, None, None, None]
        if pending is None:
            pending, pending_weight = weighted, w
        else:  # the last `lead` pending frames are this chunk's first `lead` frames
            pending[len(pending) - lead:] += weighted[:lead]
            pending_weight[len(pending_weight) - lead:] += w[:lead]
            pending, pending_weight = torch.cat([pending, weighted[lead:]]), torch.cat([pending_weight, w[lead:]])
        final = len(pending) - trail
        real = min(final, current.start + current.frames - pending_start)  # the padded tail is never output
        blended = pending[:real] / pending_weight[:real, None, None, None]
        layout = current.layout
        for frame in blended:
            yield to_uint8(frame[:layout.height, :layout.width])
        pending, pending_weight, pending_start = pending[final:], pending_weight[final:], pending_start + final
        current = following


def reconstruct_stream(model: ViTok, frames: Iterable[np.ndarray], tiling: Tiling) -> Iterator[np.ndarray]:
    """Encode then decode a frame stream chunk by chunk: the same functions on the same chunks as
    `encode_stream` followed by `decode_stream`, so both routes give identical pixels."""
    return decode_stream(model, encode_stream(model, frames, tiling))


def seam_ratio(image: np.ndarray, layout: FrameLayout, patch: int) -> float:
    """How visible tile borders are: the mean squared step between neighbouring pixels across the layout's
    tile edges, over the same mean across every other patch edge (both axes). Patch edges are the fair
    comparison: a tokenizer's errors already jump there, tile or no tile. About 1 when tile borders do not
    show, above 1 when they do."""
    pixels = image.astype(np.float64)
    border, elsewhere = [], []
    for axis, starts, size in ((0, layout.starts_h, layout.tile_height), (1, layout.starts_w, layout.tile_width)):
        steps = np.diff(pixels, axis=axis) ** 2  # step i lies between pixel i and i + 1
        per_step = steps.mean(axis=tuple(a for a in range(steps.ndim) if a != axis))
        edges = {s - 1 for s in starts if s > 0} | {s + size - 1 for s in starts if s + size < pixels.shape[axis]}
        for i in range(patch - 1, len(per_step), patch):
            (border if i in edges else elsewhere).append(per_step[i])
    if not border or not elsewhere:
        raise ValueError("seam_ratio needs at least one tile edge and one other patch edge")
    return float(np.mean(border) / max(np.mean(elsewhere), 1e-12))
