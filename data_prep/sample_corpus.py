"""A small, real sample corpus built on first use from the photographs inside scikit-image's wheel.

Images are written as JPEG and PNG in several modes (RGB, L, RGBA, P); videos are short H.264 MP4 clips
encoded with PyAV from camera pans and zooms over those photos, at a few frame rates and sizes. Nothing
is downloaded and nothing large is committed: the corpus is a pure function of the installed wheels.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
from PIL import Image

# Bump when the recipe changes, so an existing corpus built by an older recipe is rebuilt.
CORPUS_VERSION = 2
MARKER = "corpus.json"
MAX_IMAGE_SIDE = 384
# Splits hash each file's path relative to the corpus root (schema.split_of). With these folder names the
# default val fraction (0.1) puts 2 images and 2 videos in "val", so both splits of both media types exist.
IMAGE_DIR, VIDEO_DIR = "img", "video"  # keeps the corpus a few MB; the pipeline resizes far below this anyway

# Photographs in skimage/data that ship inside the wheel (no pooch download). Missing ones are skipped.
PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png", "coffee.png",
    "coins.png", "color.png", "grass.png", "gravel.png", "horse.png", "hubble_deep_field.jpg", "ihc.png",
    "logo.png", "microaneurysms.png", "moon.png", "motorcycle_left.png", "motorcycle_right.png",
    "page.png", "phantom.png", "retina.jpg", "rocket.jpg", "text.png",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    name: str
    photo: str
    motion: str  # "pan-right", "pan-left", "pan-down", "pan-diag", "zoom-in", "zoom-out"
    frames: int
    fps: int
    width: int
    height: int


CLIPS = (
    ClipSpec("astronaut_pan_right", "astronaut.png", "pan-right", 48, 24, 160, 120),
    ClipSpec("coffee_zoom_in", "coffee.png", "zoom-in", 64, 30, 256, 192),
    ClipSpec("chelsea_pan_down", "chelsea.png", "pan-down", 24, 12, 160, 120),
    ClipSpec("rocket_zoom_out", "rocket.jpg", "zoom-out", 40, 24, 256, 192),
    ClipSpec("motorcycle_pan_left", "motorcycle_left.png", "pan-left", 60, 30, 256, 192),
    ClipSpec("hubble_zoom_in", "hubble_deep_field.jpg", "zoom-in", 32, 12, 160, 120),
    ClipSpec("ihc_pan_diag", "ihc.png", "pan-diag", 36, 30, 160, 120),
    ClipSpec("coins_zoom_out", "coins.png", "zoom-out", 64, 24, 256, 192),
)


def skimage_data_dir() -> str:
    import skimage.data

    return os.path.dirname(skimage.data.__file__)


def build_sample_corpus(output: str) -> dict:
    """Build the corpus in `output` unless a complete one is already there. Returns a summary dict."""
    output = os.path.abspath(output)
    marker = os.path.join(output, MARKER)
    existing = _read_marker(marker)
    if existing is not None and all(os.path.isfile(os.path.join(output, f)) for f in existing["files"]):
        return {**existing, "path": output, "built": False}

    src = skimage_data_dir()
    photos = [p for p in PHOTOS if os.path.isfile(os.path.join(src, p))]
    os.makedirs(os.path.join(output, IMAGE_DIR), exist_ok=True)
    os.makedirs(os.path.join(output, VIDEO_DIR), exist_ok=True)
    files = []
    for i, photo in enumerate(photos):
        with Image.open(os.path.join(src, photo)) as im:
            im.load()
            files.append(_write_image(im, output, os.path.splitext(photo)[0], i))
    for spec in CLIPS:
        if spec.photo in photos:
            with Image.open(os.path.join(src, spec.photo)) as im:
                files.append(_write_clip(im.convert("RGB"), output, spec))
    summary = {
        "version": CORPUS_VERSION,
        "files": sorted(files),
        "images": sum(f.startswith(f"{IMAGE_DIR}/") for f in files),
        "videos": sum(f.startswith(f"{VIDEO_DIR}/") for f in files),
    }
    # The marker is written last: its presence means every file it lists is complete.
    _atomic_write(marker, json.dumps(summary, indent=1).encode())
    return {**summary, "path": output, "built": True}


def _read_marker(path: str) -> dict | None:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if data.get("version") == CORPUS_VERSION else None


def _write_image(im: Image.Image, output: str, stem: str, i: int) -> str:
    im.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), Image.Resampling.LANCZOS)
    # Alternate formats and keep a spread of modes, so decoding sees what real corpora contain.
    if im.mode == "RGBA" or i % 2 == 1:
        if i % 5 == 3 and im.mode == "RGB":
            im = im.quantize(colors=64)  # palette ("P") PNG
        rel, fmt, kw = f"{IMAGE_DIR}/{stem}.png", "PNG", {}
    else:
        rel, fmt, kw = f"{IMAGE_DIR}/{stem}.jpg", "JPEG", {"quality": 90}
        im = im if im.mode in ("RGB", "L") else im.convert("RGB")
    path = os.path.join(output, rel)
    tmp = f"{path}.tmp{os.getpid()}"
    im.save(tmp, format=fmt, **kw)
    os.replace(tmp, path)
    return rel


def _camera_frames(photo: Image.Image, spec: ClipSpec) -> list[np.ndarray]:
    """Frames of a virtual camera moving over `photo`: a crop window that slides or shrinks/grows."""
    pw, ph = photo.size
    aspect = spec.width / spec.height
    # Largest window of the clip's aspect that fits the photo; pans use 70% of it so there is room to move.
    full_w = min(pw, ph * aspect)
    frames = []
    for k in range(spec.frames):
        t = k / max(1, spec.frames - 1)  # 0 -> 1 over the clip
        if spec.motion.startswith("zoom"):
            z = t if spec.motion == "zoom-in" else 1 - t
            w = full_w * (1.0 - 0.5 * z)
            cx, cy = pw / 2, ph / 2
        else:
            w = 0.7 * full_w
            h = w / aspect
            fx = {"pan-right": t, "pan-left": 1 - t, "pan-down": 0.5, "pan-diag": t}[spec.motion]
            fy = {"pan-right": 0.5, "pan-left": 0.5, "pan-down": t, "pan-diag": t}[spec.motion]
            cx = w / 2 + fx * (pw - w)
            cy = h / 2 + fy * (ph - h)
        h = w / aspect
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        frame = photo.resize((spec.width, spec.height), Image.Resampling.BILINEAR, box=box)
        frames.append(np.asarray(frame))
    return frames


def _write_clip(photo: Image.Image, output: str, spec: ClipSpec) -> str:
    import av

    rel = f"{VIDEO_DIR}/{spec.name}.mp4"
    path = os.path.join(output, rel)
    tmp = f"{path}.tmp{os.getpid()}.mp4"
    with av.open(tmp, mode="w") as container:
        # libx264 explicitly: PyAV's "h264" alias may resolve to another encoder with other defaults.
        stream = container.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height = spec.width, spec.height
        stream.pix_fmt = "yuv420p"  # the pixel format every H.264 decoder supports
        stream.options = {"preset": "veryfast", "crf": "23", "g": str(spec.fps)}
        for arr in _camera_frames(photo, spec):
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return rel


def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
