"""Ray Data pipelines that turn image/video corpora into Arrow tubelet Parquet shards (DESIGN.md section 5).

Inputs and outputs are local folders or s3://bucket/prefix. Public API: run() prepares an output,
read_tubelets() and load_manifest() read it back, build_sample_corpus() makes the small bundled corpus.
CLI: python -m data_prep --help; scheduled runs: workflows/data_prep_job.py.
"""

from data_prep.errors import DataPrepError
from data_prep.pipeline import run
from data_prep.reader import load_manifest, read_tubelets
from data_prep.sample_corpus import build_sample_corpus

__all__ = ["DataPrepError", "build_sample_corpus", "load_manifest", "read_tubelets", "run"]
