"""A small, real sample corpus built on first use from the photographs inside scikit-image's wheel.

The corpus is split by SOURCE first: each scene (a photograph, or the two photographs of a stereo pair) is
either a training source or a held-out one, and everything made from it lands under that split's folder:

    img/{train,val}/<source>/<source>_<k>.jpg|png     crops (random scale and position, every other one
                                                      mirrored) at the study resolution, 64x64, so data
                                                      prep at 64 keeps them as they are
    video/{train,val}/<source>/<source>_<motion>.mp4  H.264 camera pans and zooms over the photograph
                                                      (and its mirror image), 64 frames at 12, 24 or 30 fps

Data prep takes the split from the `train` / `val` folder (schema.split_of), so the validation metrics are
measured on scenes the tokenizer never saw in training; the source folder below it is ImageNet's layout,
so `--labels parent-dir` makes each source a class. `corpus.json` records each source's split and files.
Images keep the colour modes real corpora have (JPEG RGB and L, PNG RGB, L, RGBA and P). Nothing is
downloaded and nothing large is committed: the corpus is a pure function of the installed wheels.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
from PIL import Image, ImageOps

# Bump when the recipe changes, so an existing corpus built by an older recipe is rebuilt.
CORPUS_VERSION = 3
MARKER = "corpus.json"
IMAGE_DIR, VIDEO_DIR = "img", "video"
TRAIN, VAL = "train", "val"
STUDY_SIZE = 64  # side of the image crops: the tiny studies' resolution
MIN_CROP_SIDE = 64  # crops never take fewer source pixels than this (unless the photo is smaller)
CROPS = {TRAIN: 24, VAL: 16}  # crops per source: 17 x 24 = 408 training images, 6 x 16 = 96 held out
MAX_PHOTO_SIDE = 384  # photos are shrunk to this before filming: the clips are far smaller anyway
VIDEO_FRAMES = 64  # 64 frames give 2-4 clips of 8 frames at 8 fps (4 at 12 fps, 2 at 24 and 30 fps)
VIDEO_FPS = (12, 24, 30)
VIDEO_SIZES = ((96, 72), (128, 96))  # (width, height): the short side is above the study resolution


@dataclasses.dataclass(frozen=True)
class Source:
    name: str
    photos: tuple[str, ...]  # files in skimage/data; two photographs of one scene are one source
    split: str
    motions: tuple[str, str]  # the camera of its two clips: pan-right/left/down/diag, zoom-in/out


# Held out: six scenes of the kinds the training scenes cover (two colour photographs, a colour medical
# image, a grey photograph, a grey texture, a document), chosen before any study was run.
SOURCES = (
    Source("astronaut", ("astronaut.png",), TRAIN, ("pan-right", "zoom-in")),
    Source("brick", ("brick.png",), TRAIN, ("pan-diag", "zoom-out")),
    Source("camera", ("camera.png",), TRAIN, ("zoom-in", "pan-left")),
    Source("cell", ("cell.png",), TRAIN, ("pan-down", "zoom-out")),
    Source("chelsea", ("chelsea.png",), VAL, ("pan-down", "zoom-in")),
    Source("clock_motion", ("clock_motion.png",), TRAIN, ("zoom-out", "pan-right")),
    Source("coffee", ("coffee.png",), TRAIN, ("zoom-in", "pan-diag")),
    Source("coins", ("coins.png",), VAL, ("zoom-out", "pan-right")),
    Source("color", ("color.png",), TRAIN, ("pan-left", "zoom-in")),
    Source("grass", ("grass.png",), TRAIN, ("pan-right", "zoom-out")),
    Source("gravel", ("gravel.png",), VAL, ("pan-diag", "zoom-in")),
    Source("horse", ("horse.png",), TRAIN, ("zoom-in", "pan-down")),
    Source("hubble", ("hubble_deep_field.jpg",), TRAIN, ("zoom-in", "pan-left")),
    Source("ihc", ("ihc.png",), TRAIN, ("pan-diag", "zoom-out")),
    Source("logo", ("logo.png",), TRAIN, ("zoom-out", "pan-right")),
    Source("microaneurysms", ("microaneurysms.png",), TRAIN, ("pan-right", "zoom-in")),
    Source("moon", ("moon.png",), TRAIN, ("pan-left", "zoom-out")),
    Source("motorcycle", ("motorcycle_left.png", "motorcycle_right.png"), TRAIN, ("pan-left", "zoom-in")),
    Source("page", ("page.png",), VAL, ("pan-right", "zoom-out")),
    Source("phantom", ("phantom.png",), TRAIN, ("zoom-out", "pan-diag")),
    Source("retina", ("retina.jpg",), VAL, ("zoom-in", "pan-left")),
    Source("rocket", ("rocket.jpg",), VAL, ("zoom-out", "pan-down")),
    Source("text", ("text.png",), TRAIN, ("pan-down", "zoom-in")),
)


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    name: str
    motion: str
    frames: int
    fps: int
    width: int
    height: int


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
    _remove_previous(output, marker)

    src = skimage_data_dir()
    sources, clip_number = {}, 0
    for source in SOURCES:
        paths = [os.path.join(src, p) for p in source.photos if os.path.isfile(os.path.join(src, p))]
        if not paths:  # a wheel without this photograph: the corpus is built from the others
            continue
        photos = [_load(p) for p in paths]
        for media in (IMAGE_DIR, VIDEO_DIR):
            os.makedirs(os.path.join(output, media, source.split, source.name), exist_ok=True)
        files = _write_crops(photos, output, source)
        for k, motion in enumerate(source.motions):
            width, height = VIDEO_SIZES[clip_number % len(VIDEO_SIZES)]
            spec = ClipSpec(f"{source.name}_{motion.replace('-', '_')}", motion, VIDEO_FRAMES,
                            VIDEO_FPS[clip_number % len(VIDEO_FPS)], width, height)
            files.append(_write_clip(_filmed_photo(photos, k), output, source, spec))
            clip_number += 1
        sources[source.name] = {"split": source.split, "photos": list(source.photos), "files": sorted(files)}
    files = sorted(f for s in sources.values() for f in s["files"])
    summary = {"version": CORPUS_VERSION, "files": files, "sources": sources}
    for media, folder in (("images", IMAGE_DIR), ("videos", VIDEO_DIR)):
        summary[media] = sum(f.startswith(f"{folder}/") for f in files)
        for split in (TRAIN, VAL):
            summary[f"{split}_{media}"] = sum(f.startswith(f"{folder}/{split}/") for f in files)
    # The marker is written last: its presence means every file it lists is complete.
    _atomic_write(marker, json.dumps(summary, indent=1).encode())
    return {**summary, "path": output, "built": True}


def _read_marker(path: str, any_version: bool = False) -> dict | None:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if any_version or data.get("version") == CORPUS_VERSION else None


def _remove_previous(output: str, marker: str) -> None:
    """Deletes the files an earlier recipe's marker lists (and the marker): left in place, data prep would
    list them beside the new ones, and a scene of an old flat layout could reach both splits."""
    previous = _read_marker(marker, any_version=True)
    if previous is None:
        return
    for rel in previous.get("files", []):
        path = os.path.normpath(os.path.join(output, rel))
        if path.startswith(output + os.sep) and os.path.isfile(path):
            os.remove(path)
    os.remove(marker)  # last: after a crash above, the next build finds the list again


def _load(path: str) -> Image.Image:
    with Image.open(path) as im:
        im.load()
    im.thumbnail((MAX_PHOTO_SIDE * 2, MAX_PHOTO_SIDE * 2), Image.Resampling.LANCZOS)  # crops keep detail
    return im if im.mode in ("RGB", "L", "RGBA") else im.convert("RGB")


def _write_crops(photos: list[Image.Image], output: str, source: Source) -> list[str]:
    """CROPS[split] square crops of random scale and position, resized to STUDY_SIZE, odd ones mirrored."""
    rng = np.random.default_rng(list(source.name.encode()))  # the same crops on every machine
    files = []
    for k in range(CROPS[source.split]):
        photo = photos[(k // 2) % len(photos)]  # each photograph of a pair, plain and mirrored
        short = min(photo.size)
        side = rng.uniform(min(short, max(MIN_CROP_SIDE, 0.25 * short)), short)
        left, top = rng.uniform(0, photo.width - side), rng.uniform(0, photo.height - side)
        crop = photo.resize((STUDY_SIZE, STUDY_SIZE), Image.Resampling.LANCZOS,
                            box=(left, top, left + side, top + side))
        files.append(_write_image(ImageOps.mirror(crop) if k % 2 else crop, output, source, k))
    return files


def _write_image(im: Image.Image, output: str, source: Source, k: int) -> str:
    # Alternate formats and keep a spread of modes, so decoding sees what real corpora contain.
    stem = f"{IMAGE_DIR}/{source.split}/{source.name}/{source.name}_{k:02d}"
    if im.mode == "RGBA" or k % 2 == 1:
        if k % 6 == 3 and im.mode == "RGB":
            im = im.quantize(colors=64)  # palette ("P") PNG
        rel, fmt, kw = f"{stem}.png", "PNG", {}
    else:
        rel, fmt, kw = f"{stem}.jpg", "JPEG", {"quality": 90}
    path = os.path.join(output, rel)
    tmp = f"{path}.tmp{os.getpid()}"
    im.save(tmp, format=fmt, **kw)
    os.replace(tmp, path)
    return rel


def _filmed_photo(photos: list[Image.Image], k: int) -> Image.Image:
    """The photograph clip `k` of a source films: the second clip takes the second photograph of a pair,
    else the mirror image of the first, so the two clips of a scene never show the same view."""
    if k == 0:
        return photos[0].convert("RGB")
    return (photos[1] if len(photos) > 1 else ImageOps.mirror(photos[0])).convert("RGB")


def _camera_frames(photo: Image.Image, spec: ClipSpec) -> list[np.ndarray]:
    """Frames of a virtual camera moving over `photo`: a crop window that slides or shrinks/grows."""
    photo = photo.copy()
    photo.thumbnail((MAX_PHOTO_SIDE, MAX_PHOTO_SIDE), Image.Resampling.LANCZOS)
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


def _write_clip(photo: Image.Image, output: str, source: Source, spec: ClipSpec) -> str:
    import av

    rel = f"{VIDEO_DIR}/{source.split}/{source.name}/{spec.name}.mp4"
    path = os.path.join(output, rel)
    tmp = f"{path}.tmp{os.getpid()}.mp4"
    with av.open(tmp, mode="w") as container:
        # libx264 explicitly: PyAV's "h264" alias may resolve to another encoder with other defaults.
        stream = container.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height = spec.width, spec.height
        stream.pix_fmt = "yuv420p"  # the pixel format every H.264 decoder supports
        # One thread and no macroblock tree: with either, x264's output (so the decoded pixels) varied
        # between builds of the same clip here; without them every build is byte-identical.
        stream.options = {"preset": "veryfast", "crf": "23", "g": str(spec.fps), "threads": "1",
                          "x264-params": "mbtree=0"}
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
