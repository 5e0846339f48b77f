"""Ray Data pipelines that turn image/video corpora into Arrow tubelet Parquet shards (ARCHITECTURE.md).

Inputs and outputs are local folders or s3://bucket/prefix. Public API: run() prepares an output,
read_tubelets() and read_shard_manifest() (typed; load_manifest(): its JSON) read it back, tensor_numpy()
gives a shard's pixels as one array to code that reads the Parquet file with pyarrow alone,
build_sample_corpus() makes the small bundled corpus. The exactly-once unit kit that the latent cache
shares is data_prep.exactly_once.
CLI: python -m data_prep --help; scheduled runs: workflows/data_prep_job.py.
"""

from __future__ import annotations

import importlib
from typing import Any

# Each public name and the module that defines it. They are imported when first used, not with the package:
# importing any part of data_prep (the CLI's parser, the console) would otherwise import Ray Data first, and
# an entry point rejecting a bad flag would pay seconds of imports before it could say so.
_EXPORTS = {
    "DataPrepError": "data_prep.errors",
    "run": "data_prep.pipeline",
    "load_manifest": "data_prep.shard_manifest",
    "read_shard_manifest": "data_prep.shard_manifest",
    "read_tubelets": "data_prep.reader",
    "tensor_numpy": "data_prep.exactly_once.tensor_columns",
    "build_sample_corpus": "data_prep.sample_corpus",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'data_prep' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
