"""The row schema of tubelet shards and of the quarantine table."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from data_prep.exactly_once.tensor_columns import shard_table
from data_prep.params import stable_hash

QUARANTINE_SCHEMA = pa.schema(
    [
        ("uri", pa.string()),
        # Where the input failed: "read", "sniff" (not media by content), "label" (no label where the output
    # has labels), "dedupe" (same bytes as another input), "decode", "clip" (too short for one clip) or
    # "transform".
    ("stage", pa.string()),
        ("error_type", pa.string()),  # exception class name
        ("message", pa.string()),
    ]
)

# Scalar columns in order; `pixels` (a tensor column, uint8 [T, H, W, 3]: exactly_once/tensor_columns.py) comes
# second.
SCALAR_COLUMNS = {
    "source_uri": pa.string(),
    "clip_index": pa.int32(),
    "start_frame": pa.int32(),  # first source frame of the clip (0 for images)
    "frame_stride": pa.int32(),  # source frames between consecutive tubelet frames (1 for images)
    "fps": pa.float32(),  # frame rate of the tubelet: src_fps / frame_stride (0.0 for images)
    "orig_height": pa.int32(),  # source size before resize/crop, in display orientation
    "orig_width": pa.int32(),
    "split": pa.string(),  # "train" or "val"
    "media_type": pa.string(),  # "image" or "video"
}
# Last, only in outputs prepared with --labels (labels.py): the class as an int and as its name.
LABEL_COLUMNS = {"label": pa.int32(), "label_name": pa.string()}


def sample_id(relative_key: str, clip_index: int, pixel_key: str) -> str:
    """The clip's id: its file's path relative to the corpus root, so the id does not move with the corpus."""
    return stable_hash(relative_key, str(clip_index), pixel_key, length=32)


def split_of(relative_key: str, val_fraction: float) -> str:
    """Split by source file, not by clip, so clips of one video never straddle train and val.

    A corpus that is split already says so with its folders: a path with a folder named exactly `train` or
    `val` takes that split (the folder nearest the file wins), whatever `val_fraction` is, so a held-out
    set chosen by source (e.g. the sample corpus's `img/val/...`) stays held out. Any other path is split
    by a hash of its key. The key is the file's path relative to the corpus root, so moving or re-mounting
    a corpus (or adding files to it) never moves an existing file between splits.
    """
    folders = relative_key.split("/")[:-1]
    for folder in reversed(folders):
        if folder in ("train", "val"):
            return folder
    bucket = int(stable_hash(relative_key, "split", length=8), 16) / 16**8
    return "val" if bucket < val_fraction else "train"


def tubelet_table(rows: list[dict], pixels: list[np.ndarray]) -> pa.Table:
    """Arrow table for one shard; `rows` hold the scalar columns plus sample_id, `pixels` the tubelets."""
    arrays: dict = {"sample_id": pa.array([r["sample_id"] for r in rows], pa.string())}
    arrays["pixels"] = np.stack(pixels)
    for name, typ in SCALAR_COLUMNS.items():
        arrays[name] = pa.array([r[name] for r in rows], typ)
    for name, typ in LABEL_COLUMNS.items():
        if name in rows[0]:
            arrays[name] = pa.array([r[name] for r in rows], typ)
    return shard_table(arrays)


def quarantine_table(records: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(records, schema=QUARANTINE_SCHEMA)
