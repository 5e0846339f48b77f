"""Tensor columns of a shard (tubelet pixels, latents): each row's array is one fixed-size binary value, its
dtype and shape in the column's field metadata.

Why not Arrow's tensor types: Parquet has no fixed-size list, so a tensor stored as one (Ray's tensor
extension) is written as a list of single values, with a repetition and a definition level for each: several
times slower to write and to read than one binary value per row, for files of about the same size once
compressed (bench/data/prep_unit_costs.py times both; docs/performance.md).

`shard_table` builds a table for the writer, `tensor_numpy` reads a column back as one array, and
`data_prep.reader` hands Ray Data readers Ray's tensor type, so trainers see (N, *shape) arrays as before.
Nothing here imports Ray.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

TENSOR_KEY = b"tensor"  # field metadata: {"dtype": numpy dtype string, "shape": per-row shape}


def shard_table(columns: dict[str, np.ndarray | pa.Array | pa.ChunkedArray]) -> pa.Table:
    """A table with `columns` in their order; each numpy array (N, *shape) becomes a tensor column of N rows,
    everything else is kept as it is."""
    fields, arrays = [], []
    for name, values in columns.items():
        if isinstance(values, np.ndarray):
            values = np.ascontiguousarray(values)
            row_bytes = values.dtype.itemsize * int(np.prod(values.shape[1:]))
            meta = {"dtype": values.dtype.str, "shape": list(values.shape[1:])}
            arrays.append(pa.FixedSizeBinaryArray.from_buffers(pa.binary(row_bytes), len(values),
                                                               [None, pa.py_buffer(values)]))  # fmt: skip
            fields.append(pa.field(name, pa.binary(row_bytes), metadata={TENSOR_KEY: json.dumps(meta)}))
        else:
            arrays.append(values)
            fields.append(pa.field(name, values.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def tensor_columns(schema: pa.Schema) -> list[str]:
    """The names of the tensor columns in `schema`."""
    return [f.name for f in schema if f.metadata and TENSOR_KEY in f.metadata]


def tensor_numpy(table: pa.Table, name: str) -> np.ndarray:
    """The tensor column `name` as one (N, *shape) array (a view of Arrow's buffer when it is one chunk)."""
    field = table.schema.field(name)
    if not (field.metadata and TENSOR_KEY in field.metadata):
        raise ValueError(f"column {name!r} is not a tensor column (no {TENSOR_KEY.decode()!r} metadata)")
    meta = json.loads(field.metadata[TENSOR_KEY])
    column = table.column(name).combine_chunks()
    if len(column) == 0:
        return np.empty((0, *meta["shape"]), np.dtype(meta["dtype"]))
    row_bytes = column.type.byte_width
    data = column.buffers()[1]
    flat = np.frombuffer(data, dtype=np.uint8, count=len(column) * row_bytes, offset=column.offset * row_bytes)
    return flat.view(np.dtype(meta["dtype"])).reshape(len(column), *meta["shape"])
