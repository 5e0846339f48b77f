"""Committing a work unit: its shard, then its record. The record is the commit point.

The shard is written (atomically) first and the record, which carries the shard's checksum, is renamed
into place last; a crash between the two leaves an orphan shard that the rerun overwrites with the same
bytes (every step that makes a shard is deterministic).
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from data_prep.exactly_once.records import read_record, record_path
from data_prep.exactly_once.tensor_columns import tensor_columns
from data_prep.storage import Store

SHARD_FOLDERS = {"image": "images", "video": "videos"}


def shard_path(media_type: str, unit_id: str) -> str:
    return f"{SHARD_FOLDERS[media_type]}/{unit_id}.parquet"


def commit_once(store: Store, unit_id: str, make_record: Callable[[], dict]) -> dict:
    """The unit's record: the committed one, else `make_record()` (which writes the shard) committed now."""
    existing = read_record(store, unit_id)
    if existing is not None:
        return existing
    record = make_record()
    store.write_atomic(record_path(unit_id), json.dumps(record, indent=1).encode())
    return record


def shard_bytes(table: pa.Table, compression: str = "zstd") -> bytes:
    """`table` (built by tensor_columns.shard_table) as the Parquet file a shard holds (`compression` other
    than zstd: benchmarks only)."""
    tensors = tensor_columns(table.schema)
    scalars = [c for c in table.column_names if c not in tensors]
    buf = io.BytesIO()
    # Tensor columns: no dictionary and no min/max statistics (both cost more time than they save for
    # noise-like pixels or floats), zstd.
    pq.write_table(table, buf, use_dictionary=scalars, write_statistics=scalars, compression=compression)
    return buf.getvalue()


def write_shard(store: Store, path: str, table: pa.Table) -> dict:
    """Write `table` atomically to `path`; return the record's shard entry: path, rows, sha256, bytes."""
    data = shard_bytes(table)
    store.write_atomic(path, data)
    return {"path": path, "rows": table.num_rows, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
