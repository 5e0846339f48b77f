"""The row schema of latent shards, and the storage of each latent dtype.

One row per tubelet: `sample_id`, `latent` (a tensor column (T', H', W', c), as data_prep's
exactly_once/tensor_columns.py stores them: the bottleneck mean), `latent_logvar` when asked for, then the
tubelet shard's columns except `pixels` (source_uri ... media_type, and label / label_name when the shards
have labels), in their order.

float16 and float32 are stored as themselves. Arrow has no bfloat16, so bfloat16 latents are stored as their
16-bit patterns in a uint16 tensor (the manifest says so); `to_float32` turns any stored latent back into
float32 (in torch: `torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16)`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch

from data_prep.exactly_once.tensor_columns import shard_table

STORAGE = {"float16": "float16", "float32": "float32", "bfloat16": "uint16 bit patterns of bfloat16"}
LATENT, LOGVAR = "latent", "latent_logvar"


def to_storage(values: torch.Tensor, dtype: str) -> np.ndarray:
    """float32 tensor -> the numpy array stored for `dtype` (round to nearest even, as torch casts)."""
    if dtype == "bfloat16":
        return values.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    return values.to(getattr(torch, dtype)).numpy()


def to_float32(stored: np.ndarray, dtype: str) -> np.ndarray:
    """A stored latent array (any shape) as float32; exact (every stored dtype widens losslessly)."""
    if dtype == "bfloat16":
        return (stored.astype(np.uint32) << 16).view(np.float32)
    return stored.astype(np.float32)


def latent_table(source: pa.Table, latent: np.ndarray, logvar: np.ndarray | None) -> pa.Table:
    """The latent shard for the tubelet shard `source` (same rows, same order)."""
    arrays = {"sample_id": source.column("sample_id"), LATENT: latent}
    if logvar is not None:
        arrays[LOGVAR] = logvar
    for name in source.column_names:
        if name not in ("sample_id", "pixels"):
            arrays[name] = source.column(name)
    return shard_table(arrays)
