"""The latent cache's input, read and checked without Ray or torch: the tubelet shards' manifest and which of
their media types to encode. The pipeline starts from it, and `cache_latents.py` checks it before its heavy
imports, so that a missing or empty shards folder is answered at once."""

from __future__ import annotations

import dataclasses
import os

from data_prep import s3
from data_prep.errors import DataPrepError
from data_prep.shard_manifest import ShardManifest, read_shard_manifest
from workflows.latents.errors import LatentsError
from workflows.latents.params import CacheOptions


@dataclasses.dataclass(frozen=True)
class TubeletInput:
    root: str  # the shards' folder (absolute) or s3://bucket/prefix
    manifest: ShardManifest
    media_types: tuple[str, ...]  # those the options ask for, all present in the shards


def read_tubelet_input(shards: str, options: CacheOptions, s3_endpoint_url: str | None = None,
                       s3_region: str | None = None) -> TubeletInput:  # fmt: skip
    """The shards at `shards` as the cache will encode them, or LatentsError saying what is wrong."""
    root = shards.rstrip("/") if s3.is_s3(shards) else os.path.abspath(shards)
    try:
        manifest = read_shard_manifest(root, s3_endpoint_url, s3_region)
    except DataPrepError as err:
        raise LatentsError(f"shards {err}") from None
    present = sorted({s.media_type for s in manifest.shards})
    if not present:
        raise LatentsError(f"shards {root}: the manifest lists no shards (every input was quarantined?)")
    chosen = options.media_types or tuple(present)
    absent = [m for m in chosen if m not in present]
    if absent:
        raise LatentsError(f"shards {root}: no {absent[0]} shards (it has {', '.join(present)})")
    return TubeletInput(root, manifest, tuple(chosen))
