"""Ray Data pipelines that turn image/video corpora into Arrow tubelet Parquet shards (ARCHITECTURE.md).

Inputs and outputs are local folders or s3://bucket/prefix. Public API: run() prepares an output,
read_tubelets() and read_shard_manifest() (typed; load_manifest(): its JSON) read it back,
build_sample_corpus() makes the small bundled corpus. The exactly-once unit kit that the latent cache
shares is data_prep.exactly_once.
CLI: python -m data_prep --help; scheduled runs: workflows/data_prep_job.py.
"""

from data_prep.errors import DataPrepError
from data_prep.pipeline import run
from data_prep.reader import load_manifest, read_shard_manifest, read_tubelets
from data_prep.sample_corpus import build_sample_corpus

__all__ = ["DataPrepError", "build_sample_corpus", "load_manifest", "read_shard_manifest", "read_tubelets", "run"]
