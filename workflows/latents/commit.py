"""Encoding and committing one latent work unit with the exactly-once kit (data_prep/exactly_once/).

The record carries the latent shard's checksum, the tubelet shard it was made from and the unit's
train-split moments. A crash between shard and record leaves an orphan shard that the rerun overwrites with
the same bytes (encoding is deterministic: the same rows in the same fixed batches through the same weights).
"""

from __future__ import annotations

import hashlib
import io
import time

import numpy as np
import pyarrow.parquet as pq

from data_prep.exactly_once.commit import commit_once, write_shard
from data_prep.exactly_once.tensor_columns import tensor_numpy
from data_prep.storage import Store
from workflows.latents.encode import LatentEncoder
from workflows.latents.params import LatentParams
from workflows.latents.schema import latent_table, to_float32, to_storage
from workflows.latents.stats import Moments
from workflows.latents.units import LatentUnit


def commit_latent_unit(output: Store, tubelets: Store, unit: LatentUnit, encoder: LatentEncoder,
                       params: LatentParams) -> dict:  # fmt: skip
    """Encode and commit `unit` unless already committed; return its record."""
    return commit_once(output, unit.unit_id, lambda: _latent_record(output, tubelets, unit, encoder, params))


def _latent_record(output: Store, tubelets: Store, unit: LatentUnit, encoder: LatentEncoder,
                   params: LatentParams) -> dict:  # fmt: skip
    start = time.perf_counter()
    data = tubelets.read_bytes(unit.source["path"])
    if hashlib.sha256(data).hexdigest() != unit.source["sha256"]:
        raise RuntimeError(f"tubelet shard {tubelets.uri(unit.source['path'])} is not the one its manifest names "
                           "(sha256 differs): rerun data prep, then this")  # fmt: skip
    source = pq.read_table(io.BytesIO(data))
    mean, logvar = encoder.moments(tensor_numpy(source, "pixels"))
    latent = to_storage(mean, params.dtype)
    values = to_float32(latent, params.dtype)
    if not np.isfinite(values).all():
        raise RuntimeError(f"latents of {tubelets.uri(unit.source['path'])} overflow {params.dtype}: use --dtype "
                           "float32 or bfloat16")  # fmt: skip
    table = latent_table(source, latent, to_storage(logvar, params.dtype) if params.logvar else None)
    shard = write_shard(output, unit.shard_path, table)
    train = source.column("split").to_numpy(zero_copy_only=False) == "train"
    shard.update(train_rows=int(train.sum()), val_rows=int((~train).sum()))
    return {
        "unit_id": unit.unit_id,
        "media_type": unit.media_type,
        "source": {k: unit.source[k] for k in ("path", "sha256", "unit_id")},
        "shard": shard,
        # Over the stored values, so the published statistics are those of what trainers will read.
        "train_moments": Moments.of(values[train]).to_dict(),
        "seconds": round(time.perf_counter() - start, 3),
    }
