"""From decoded frames to tubelets: frame-rate resampling, clip sampling, resize + crop (centre or seeded)."""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image


class VideoTooShort(ValueError):
    """Fewer frames than one clip needs at the target frame rate."""


@dataclasses.dataclass(frozen=True)
class ClipPlan:
    stride: int  # take every stride-th source frame
    fps: float  # frame rate of the resulting clip: src_fps / stride
    starts: tuple[int, ...]  # first source frame of each clip

    def indices(self, clip: int, frames: int) -> list[int]:
        s = self.starts[clip]
        return list(range(s, s + frames * self.stride, self.stride))


def plan_clips(
    num_frames: int, src_fps: float, frames: int, target_fps: float, max_clips: int, clip_stride: int = 0
) -> ClipPlan:
    """Clips of `frames` frames at ~`target_fps`, at most `max_clips`, spread over the video.

    The stride is the integer nearest src_fps / target_fps (at least 1): frames are sampled, never
    interpolated, so a 30 fps source at target 8 fps gives stride 4 and clips at 7.5 fps. Clip starts are
    `clip_stride` source frames apart (0: one clip span, so clips are back to back and never overlap).
    """
    stride = max(1, round(src_fps / target_fps)) if src_fps > 0 else 1
    span = (frames - 1) * stride + 1  # source frames one clip covers
    if num_frames < span:
        raise VideoTooShort(f"{num_frames} frames < {span} needed for {frames} frames at stride {stride}")
    step = clip_stride or frames * stride
    candidates = list(range(0, num_frames - span + 1, step))
    if len(candidates) > max_clips:
        # Evenly spaced picks rather than the first N: clips from the whole video are more diverse.
        last = len(candidates) - 1
        picks = sorted({round(i * last / max(1, max_clips - 1)) for i in range(max_clips)})
        candidates = [candidates[i] for i in picks]
    fps = src_fps / stride if src_fps > 0 else 0.0
    return ClipPlan(stride=stride, fps=fps, starts=tuple(candidates))


def resize_center_crop(frame: np.ndarray, size: int, anchor: float = 0.5) -> np.ndarray:
    """uint8 (H, W, 3) -> (size, size, 3): short side to `size` (bicubic, antialiased), then a square crop.

    `anchor` in [0, 1] places the square along the long side: 0.5 is the centre crop, 0 the top/left edge.
    """
    h, w = frame.shape[:2]
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    im = Image.fromarray(frame)
    if (new_w, new_h) != (w, h):
        im = im.resize((new_w, new_h), Image.Resampling.BICUBIC, reducing_gap=3.0)
    left, top = int(anchor * (new_w - size)), int(anchor * (new_h - size))  # floor: 0.5 is the old centre
    return np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8)


def to_tubelet(frames: np.ndarray, size: int, anchor: float = 0.5) -> np.ndarray:
    """(T, H, W, 3) -> (T, size, size, 3) uint8; one crop for all frames, so motion is not distorted."""
    return np.stack([resize_center_crop(f, size, anchor) for f in frames])
