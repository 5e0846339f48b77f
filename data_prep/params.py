"""Preparation parameters: what the tubelets are made of, and the hash that names units and samples."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from data_prep.errors import DataPrepError

# Bumped when the way pixels or names are produced or stored changes, so old shards never mix with new ones; an
# output of an older version is refused with WHY_REBUILD, by a rerun (pipeline.py) and by its readers
# (shard_manifest.py).
PREP_VERSION = 4
WHY_REBUILD = "pixels are now stored as one binary value per tubelet, not as an Arrow list of bytes"
CROPS = ("center", "random")
LABEL_KINDS = ("", "parent-dir", "csv")


@dataclasses.dataclass(frozen=True)
class PrepParams:
    frames: int = 8  # T: frames per video clip (images are always 1-frame tubelets)
    size: int = 64  # S: output side; short side resized to S then centre-cropped to S x S
    fps: float = 8.0  # target frame rate; clips take every round(src_fps / fps)-th frame
    max_clips: int = 4  # at most this many clips per video, spread evenly over it
    clip_stride: int = 0  # source frames from one clip's start to the next; 0: back to back (no overlap)
    crop: str = "center"  # "center", or "random": a square anywhere along the long side, seeded per sample
    val_fraction: float = 0.1  # share of source files (by hash of relative path) that go to the "val" split
    images_per_unit: int = 16  # inputs per work unit: the unit is the grain of resume and of one shard
    videos_per_unit: int = 4
    max_image_pixels: int = 64_000_000  # decompression-bomb guard: larger images are quarantined
    labels: str = ""  # "": no labels; "parent-dir": the file's folder; "csv": a path -> label table (labels.py)

    def __post_init__(self):
        # fps=8 and fps=8.0 must hash to the same units and sample ids.
        for name in ("fps", "val_fraction"):
            object.__setattr__(self, name, float(getattr(self, name)))

    def validate(self) -> None:
        if self.frames < 1:
            raise DataPrepError(f"--frames must be >= 1, got {self.frames}")
        if self.size < 8:
            raise DataPrepError(f"--size must be >= 8, got {self.size}")
        if not self.fps > 0:
            raise DataPrepError(f"--fps must be > 0, got {self.fps}")
        if self.max_clips < 1:
            raise DataPrepError(f"--max-clips must be >= 1, got {self.max_clips}")
        if self.clip_stride < 0:
            raise DataPrepError(f"--clip-stride must be >= 0, got {self.clip_stride}")
        if self.crop not in CROPS:
            raise DataPrepError(f"--crop must be one of {', '.join(CROPS)}, got {self.crop!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise DataPrepError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.images_per_unit < 1 or self.videos_per_unit < 1:
            raise DataPrepError("inputs per unit must be >= 1")
        if self.labels not in LABEL_KINDS:
            raise DataPrepError(f"labels must be one of {', '.join(map(repr, LABEL_KINDS))}, got {self.labels!r}")

    def to_dict(self) -> dict:
        d = {"prep_version": PREP_VERSION, **dataclasses.asdict(self)}
        if not self.labels:
            # Outputs without labels keep the parameters (and so the unit and sample ids) they had before
            # labels existed: their params.json still matches, and reruns skip their units.
            del d["labels"]
        return d

    def pixel_key(self) -> str:
        """Hash of everything that changes a row's content; unit sizes only regroup rows, so they stay out."""
        d = self.to_dict()
        for k in ("images_per_unit", "videos_per_unit"):
            d.pop(k)
        return stable_hash(json.dumps(d, sort_keys=True))


def stable_hash(*parts: str, length: int = 16) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\0")  # separator: ("ab", "c") and ("a", "bc") must differ
    return h.hexdigest()[:length]
