"""Reading prepared shards back: the tubelets of one media type and split as a Ray Dataset (the manifest is
read by shard_manifest.py, which imports no Ray).

Outputs on S3 are read through a pyarrow S3FileSystem on the same endpoint as the writer (flags, or
AWS_ENDPOINT_URL), with credentials from the default AWS chain in each Ray worker.
"""

from __future__ import annotations

import os

import pyarrow as pa
import ray
from ray.data.expressions import col
from ray.data.extensions import ArrowTensorArray

from data_prep import s3
from data_prep.errors import DataPrepError
from data_prep.exactly_once.commit import SHARD_FOLDERS
from data_prep.exactly_once.tensor_columns import tensor_columns, tensor_numpy
from data_prep.shard_manifest import read_shard_manifest
from data_prep.storage import open_store


def read_parquet_files(paths: list[str], filesystem=None) -> ray.data.Dataset:
    """`ray.data.read_parquet` of exactly these shards through Ray Data's first (V1) Parquet datasource, their
    tensor columns (exactly_once/tensor_columns.py) as Ray's tensor type: batches hold (N, *shape) arrays.

    The V2 datasource that Ray 2.60 uses by default lists every read's files through a pool of 32 footer-reading
    actors: on a loaded 2-core machine that cost 10-40 s per read of the 3 MB test shards, against 0.2-2 s for V1
    (timed by hand, seen in ray-data.log). Every run reads its train and held-out splits before it starts.
    """
    context = ray.data.DataContext.get_current()
    v2, context.use_datasource_v2 = context.use_datasource_v2, False
    try:
        ds = ray.data.read_parquet(paths, filesystem=filesystem)
    finally:
        context.use_datasource_v2 = v2
    # Whole blocks, in the read tasks (Ray Data fuses the two): no extra pass over the data.
    return ds.map_batches(_as_ray_tensors, batch_format="pyarrow", batch_size=None, zero_copy_batch=True)


def _as_ray_tensors(table: pa.Table) -> pa.Table:
    for name in tensor_columns(table.schema):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, ArrowTensorArray.from_numpy(tensor_numpy(table, name)))
    return table


def read_tubelets(
    output_dir: str,
    media_type: str = "image",
    split: str = "train",
    s3_endpoint_url: str | None = None,
    s3_region: str | None = None,
) -> ray.data.Dataset:
    """Rows of the shards named in the manifest: `pixels` is uint8 (T, H, W, 3), one split only.

    Only the shards the manifest lists are read, so orphans from an interrupted run are never seen.
    """
    if media_type not in SHARD_FOLDERS:
        raise DataPrepError(f"media_type {media_type!r}: expected one of {sorted(SHARD_FOLDERS)}")
    if split not in ("train", "val"):
        raise DataPrepError(f"split {split!r}: expected 'train' or 'val'")
    settings = s3.S3Settings(endpoint_url=s3_endpoint_url, region=s3_region)
    manifest = read_shard_manifest(output_dir, s3_endpoint_url, s3_region)
    root = output_dir.rstrip("/") if s3.is_s3(output_dir) else os.path.abspath(output_dir)
    shards = manifest.shards_of(media_type, split)
    if not shards:
        raise DataPrepError(f"{root}: no {media_type} shards with {split} rows")
    store = open_store(root, settings)
    if s3.is_s3(root):
        # pyarrow paths on S3 are "bucket/key", without the scheme.
        paths = [store.uri(s.path)[len("s3://") :] for s in shards]
        ds = read_parquet_files(paths, filesystem=s3.pyarrow_filesystem(settings))
    else:
        ds = read_parquet_files([store.uri(s.path) for s in shards])
    return ds.filter(expr=col("split") == split)
