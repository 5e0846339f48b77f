"""Reading prepared shards back: the manifest, and the tubelets of one media type and split as a Dataset."""

from __future__ import annotations

import json
import os

import ray
from ray.data.expressions import col

from data_prep.commit import SHARD_FOLDERS
from data_prep.errors import DataPrepError
from data_prep.manifest import MANIFEST


def load_manifest(output_dir: str) -> dict:
    path = os.path.join(os.path.abspath(output_dir), MANIFEST)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataPrepError(f"{path}: no manifest (run `python -m data_prep run` first)") from None
    except (OSError, ValueError) as e:
        raise DataPrepError(f"{path}: unreadable manifest ({e})") from None


def read_tubelets(output_dir: str, media_type: str = "image", split: str = "train") -> ray.data.Dataset:
    """Rows of the shards named in the manifest: `pixels` is uint8 (T, H, W, 3), one split only.

    Only the shards the manifest lists are read, so orphans from an interrupted run are never seen.
    """
    if media_type not in SHARD_FOLDERS:
        raise DataPrepError(f"media_type {media_type!r}: expected one of {sorted(SHARD_FOLDERS)}")
    if split not in ("train", "val"):
        raise DataPrepError(f"split {split!r}: expected 'train' or 'val'")
    root = os.path.abspath(output_dir)
    manifest = load_manifest(root)
    shards = [s for s in manifest["shards"] if s["media_type"] == media_type and s[f"{split}_rows"] > 0]
    if not shards:
        raise DataPrepError(f"{root}: no {media_type} shards with {split} rows")
    ds = ray.data.read_parquet([os.path.join(root, s["path"]) for s in shards])
    return ds.filter(expr=col("split") == split)
