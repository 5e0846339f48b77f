"""Tensor columns of shards: one fixed-size binary value per row, dtype and shape in the field's metadata,
read back exactly through Parquet (read_tubelets' Ray tensors: test_data_prep_pipeline.py)."""

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_prep.exactly_once.commit import shard_bytes
from data_prep.exactly_once.tensor_columns import shard_table, tensor_columns, tensor_numpy


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float16", "float32"])
def test_a_tensor_column_reads_back_exactly_through_parquet(dtype):
    rng = np.random.default_rng(0)
    values = (rng.random((5, 2, 3, 4, 3)) * 200).astype(dtype)
    table = shard_table({"sample_id": pa.array(list("abcde")), "x": values, "n": pa.array(range(5), pa.int32())})
    assert table.column_names == ["sample_id", "x", "n"] and tensor_columns(table.schema) == ["x"]
    back = pq.read_table(io.BytesIO(shard_bytes(table)))
    assert tensor_columns(back.schema) == ["x"]
    read = tensor_numpy(back, "x")
    assert read.dtype == np.dtype(dtype) and read.shape == (5, 2, 3, 4, 3)
    np.testing.assert_array_equal(read, values)
    assert back.column("n").to_pylist() == list(range(5))


def test_a_slice_a_filter_and_an_empty_table_read_their_own_rows():
    values = np.arange(6 * 4, dtype=np.uint8).reshape(6, 2, 2)
    table = shard_table({"x": values, "keep": pa.array([True, False, True, True, False, True])})
    np.testing.assert_array_equal(tensor_numpy(table.slice(2, 3), "x"), values[2:5])
    np.testing.assert_array_equal(tensor_numpy(table.filter(table.column("keep")), "x"), values[[0, 2, 3, 5]])
    assert tensor_numpy(table.slice(0, 0), "x").shape == (0, 2, 2)


def test_a_column_that_is_not_a_tensor_column_is_named():
    with pytest.raises(ValueError, match="column 'n' is not a tensor column"):
        tensor_numpy(shard_table({"n": pa.array([1, 2])}), "n")
