"""What `python -m vitok encode | decode | reconstruct` do: media files <-> latents files through a model, with
tiled and chunked inference (vitok/tiling.py).

Outputs are written under a temporary name beside the target and renamed into place only when complete, so a
failure never leaves a partial file behind. Every expected failure raises ValueError or OSError with a message
that names the file; the command line prints it as one line.
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import torch

from .checkpoint import WEIGHTS_NAME, resolve_path
from .latents_file import LatentsHeader, load_latents, save_latents, weights_sha256
from .media import (DEFAULT_CRF, Image, MediaError, VideoInfo, VideoWriter, check_crf, image_format, kind_of,
                    open_video, read_image, write_image)
from .model import ViTok
from .tiling import Tiling, decode_stream, encode_stream, reconstruct_stream


def load_model(location: str, device: str = "cpu") -> tuple[ViTok, str]:
    """The model at `location` (anything `ViTok.from_pretrained` accepts) and its weights' sha256."""
    model = ViTok.from_pretrained(location, device=device)
    return model, weights_sha256(resolve_path(location) / WEIGHTS_NAME)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` (same suffix, so writers can tell the format), renamed onto `path` on
    success and removed on failure."""
    path = Path(path)
    if not path.parent.is_dir():
        raise MediaError(f"{path}: output folder {path.parent} does not exist")
    temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _output_kind(path: str | Path, kind: str) -> None:
    """Refuse an output whose type does not match the content (a video into .png, an image into .mp4)."""
    if kind == "image":
        image_format(path)
    elif Path(path).suffix.lower() != ".mp4":
        raise MediaError(f"{path}: a video is written as .mp4, not {Path(path).suffix or '(no suffix)'!r}")


def _model_for(model_location: str, tiling: Tiling, device: str) -> tuple[ViTok, str, Tiling]:
    """(the model, its weights' sha256, the tiling with its defaults taken from the model)."""
    model, sha = load_model(model_location, device)
    return model, sha, tiling.resolve(model)


def encode(model_location: str, source: str, latents_path: str, tiling: Tiling, device: str = "cpu") -> None:
    kind = kind_of(source)
    model, sha, tiling = _model_for(model_location, tiling, device)
    with atomic_output(latents_path) as temporary, torch.inference_mode():
        if kind == "image":
            image = read_image(source)
            chunks = list(encode_stream(model, [image.rgb], tiling))
            mode, alpha, fps = image.mode, image.alpha, ""
        else:
            info, frames = open_video(source)
            chunks = list(encode_stream(model, frames, tiling))
            mode, alpha, fps = "RGB", None, str(info.fps)
        if not chunks:
            raise MediaError(f"{source}: no frames")
        layout, last = chunks[0].layout, chunks[-1]
        header = LatentsHeader(kind, mode, layout.height, layout.width, last.start + last.frames, fps, sha,
                               model.config.name, tiling)
        save_latents(temporary, header, chunks, alpha)


def decode(model_location: str, latents_path: str, output: str, device: str = "cpu", crf: int = DEFAULT_CRF) -> None:
    check_crf(crf)
    header, chunks, alpha = load_latents(latents_path)
    _output_kind(output, header.kind)
    model, sha = load_model(model_location, device)
    if sha != header.model_sha256:
        raise ValueError(f"{latents_path}: encoded by another model ({header.model_name or 'unnamed'}, weights "
                         f"sha256 {header.model_sha256[:12]}), not {model_location} (sha256 {sha[:12]})")
    frames = decode_stream(model, chunks)
    with atomic_output(output) as temporary, torch.inference_mode():
        if header.kind == "image":
            write_image(temporary, Image(next(frames), header.mode, alpha), image_format(output))
        else:
            _write_video(temporary, VideoInfo(header.height, header.width, Fraction(header.fps)), frames, crf)


def reconstruct(model_location: str, source: str, output: str, tiling: Tiling, device: str = "cpu",
                crf: int = DEFAULT_CRF) -> None:  # fmt: skip
    check_crf(crf)
    kind = kind_of(source)
    _output_kind(output, kind)
    model, _, tiling = _model_for(model_location, tiling, device)
    with atomic_output(output) as temporary, torch.inference_mode():
        if kind == "image":
            image = read_image(source)
            rgb = next(reconstruct_stream(model, [image.rgb], tiling))
            write_image(temporary, Image(rgb, image.mode, image.alpha), image_format(output))
        else:
            info, frames = open_video(source)
            _write_video(temporary, info, reconstruct_stream(model, frames, tiling), crf)


def _write_video(path: Path, info: VideoInfo, frames: Iterator, crf: int) -> None:
    writer = VideoWriter(path, info, crf)
    try:
        for frame in frames:
            writer.write(frame)
        if not writer.count:
            raise MediaError(f"{path}: no frames to write")
    finally:
        writer.close()
