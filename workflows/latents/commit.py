"""Encoding and committing one latent work unit: its shard, then its record. The record is the commit point.

The mechanism is data prep's (data_prep/commit.py, whose record location this shares): a unit is complete
exactly when `units/<unit_id>.json` exists; the latent shard is written atomically first and the record,
which carries the shard's checksum and the unit's train-split moments, last. A crash between the two
leaves an orphan shard that the rerun overwrites with the same bytes (encoding is deterministic: the same
rows in the same fixed batches through the same weights).
"""

from __future__ import annotations

import hashlib
import io
import json
import time

import numpy as np
import pyarrow.parquet as pq

from data_prep.commit import read_record, record_path
from data_prep.storage import Store
from workflows.latents.encode import LatentEncoder
from workflows.latents.params import LatentParams
from workflows.latents.schema import LATENT, LOGVAR, latent_table, to_float32, to_storage
from workflows.latents.stats import Moments
from workflows.latents.units import LatentUnit


def run_unit(output: Store, tubelets: Store, unit: LatentUnit, encoder: LatentEncoder, params: LatentParams) -> dict:
    """Encode and commit `unit` unless already committed; return its record."""
    existing = read_record(output, unit.unit_id)
    if existing is not None:
        return existing
    start = time.perf_counter()
    data = tubelets.read_bytes(unit.source["path"])
    if hashlib.sha256(data).hexdigest() != unit.source["sha256"]:
        raise RuntimeError(f"tubelet shard {tubelets.uri(unit.source['path'])} is not the one its manifest names "
                           "(sha256 differs): rerun data prep, then this")  # fmt: skip
    source = pq.read_table(io.BytesIO(data))
    mean, logvar = encoder.moments(source.column("pixels").combine_chunks().to_numpy())
    latent = to_storage(mean, params.dtype)
    values = to_float32(latent, params.dtype)
    if not np.isfinite(values).all():
        raise RuntimeError(f"latents of {tubelets.uri(unit.source['path'])} overflow {params.dtype}: use --dtype "
                           "float32 or bfloat16")  # fmt: skip
    table = latent_table(source, latent, to_storage(logvar, params.dtype) if params.logvar else None)
    scalars = [c for c in table.column_names if c not in (LATENT, LOGVAR)]
    buf = io.BytesIO()
    # As data prep writes pixels: no dictionary or min/max statistics on the tensor columns (noise-like
    # floats gain nothing from them), zstd.
    pq.write_table(table, buf, use_dictionary=scalars, write_statistics=scalars, compression="zstd")
    shard_bytes = buf.getvalue()
    output.write_atomic(unit.shard_path, shard_bytes)
    train = source.column("split").to_numpy(zero_copy_only=False) == "train"
    record = {
        "unit_id": unit.unit_id,
        "media_type": unit.media_type,
        "source": {k: unit.source[k] for k in ("path", "sha256", "unit_id")},
        "shard": {
            "path": unit.shard_path,
            "rows": table.num_rows,
            "sha256": hashlib.sha256(shard_bytes).hexdigest(),
            "bytes": len(shard_bytes),
            "train_rows": int(train.sum()),
            "val_rows": int((~train).sum()),
        },
        # Over the stored values, so the published statistics are those of what trainers will read.
        "train_moments": Moments.of(values[train]).to_dict(),
        "seconds": round(time.perf_counter() - start, 3),
    }
    output.write_atomic(record_path(unit.unit_id), json.dumps(record, indent=1).encode())
    return record
