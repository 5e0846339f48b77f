"""The latents file written by `python -m vitok encode`: one safetensors file, everything needed to decode.

Tensors:
    latents.00000, latents.00001, ...   one per temporal chunk, float32 (nH, nW, T/q, th/p, tw/p, c): the
                                        latents of each spatial tile (see vitok/tiling.py for the layout)
    alpha                               RGBA images only: the alpha plane, uint8 (H, W), stored as is
Metadata (strings): format, kind (image | video), mode, height, width, frames, fps, the tiling and its
layout (tile, overlap, chunk, chunk_overlap, padded size, tile sizes, tile starts, chunk starts and frame
counts), the model's name and model_sha256, the sha256 of its model.safetensors, which decoding checks so
that latents are never decoded by a model that did not encode them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from .tiling import Chunk, FrameLayout, Tiling

FORMAT = "vitok-latents/1"


def weights_sha256(weights: Path) -> str:
    digest = hashlib.sha256()
    with open(weights, "rb") as file:
        while block := file.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class LatentsHeader:
    kind: str  # "image" or "video"
    mode: str  # image mode to restore (RGB, L, RGBA); "RGB" for videos
    height: int
    width: int
    frames: int  # 1 for images
    fps: str  # exact frame rate "num/den" for videos, "" for images
    model_sha256: str
    model_name: str
    tiling: Tiling


def save_latents(path: str | Path, header: LatentsHeader, chunks: list[Chunk], alpha: np.ndarray | None) -> None:
    layout = chunks[0].layout
    tensors = {f"latents.{i:05d}": chunk.latents.contiguous() for i, chunk in enumerate(chunks)}
    if alpha is not None:
        tensors["alpha"] = torch.from_numpy(np.array(alpha))  # a copy: PIL arrays are read-only
    fields = {**asdict(header), "tiling": asdict(header.tiling), "layout": asdict(layout),
              "chunk_starts": [c.start for c in chunks], "chunk_frames": [c.frames for c in chunks]}
    save_file(tensors, str(path), metadata={"format": FORMAT, "header": json.dumps(fields)})


def load_latents(path: str | Path) -> tuple[LatentsHeader, list[Chunk], np.ndarray | None]:
    """Read a latents file; raises ValueError naming the file when it is not one."""
    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{path}: not a readable latents file ({error})") from None
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path}: not a vitok latents file (format {metadata.get('format')!r}, expected {FORMAT})")
    fields = json.loads(metadata["header"])
    layout_fields = fields.pop("layout")
    layout = FrameLayout(**{k: tuple(v) if isinstance(v, list) else v for k, v in layout_fields.items()})
    starts, frames = fields.pop("chunk_starts"), fields.pop("chunk_frames")
    header = LatentsHeader(**{**fields, "tiling": Tiling(**fields["tiling"])})
    chunks = [Chunk(s, n, layout, tensors[f"latents.{i:05d}"]) for i, (s, n) in enumerate(zip(starts, frames))]
    alpha = tensors["alpha"].numpy() if "alpha" in tensors else None
    return header, chunks, alpha
