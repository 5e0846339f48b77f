"""Generator ingest: latent shards -> Ray Datasets for Ray Train, read in the driver, and the workers' batches.

As every run's ingest (workflows/runs/ingest.py), everything that can be read before the workers reserve their
CPUs is read here first: the train latents when they are small enough to hold (then repeated so one Ray Data
epoch covers the run), the classes they hold, and the held-out reals. Read later, inside the
workers, those reads could wait forever on a cluster whose CPUs the workers hold. A train split too large to
hold streams, and its read tasks need a CPU beside the workers (the driver checks the cluster has one).
"""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray
from ray.data.expressions import col

from data_prep import s3
from data_prep.reader import read_parquet_files, read_tubelets
from workflows.generation.plan import GenerationPlan
from workflows.latents.schema import LATENT, to_float32
from workflows.runs.ingest import cached_and_repeated, prepare_data_context

LABEL = "label"


def _shard_paths(plan: GenerationPlan) -> tuple[list[str], object]:
    """(paths, pyarrow filesystem or None) of the plan's latent shards (only those the manifest names)."""
    if s3.is_s3(plan.latents):  # pyarrow paths on S3 are "bucket/key", without the scheme
        return [p[len("s3://"):] for p in plan.latent_shards], s3.pyarrow_filesystem(s3.S3Settings())
    return list(plan.latent_shards), None


def _train_latents(plan: GenerationPlan, columns: list[str]) -> ray.data.Dataset:
    paths, filesystem = _shard_paths(plan)
    ds = read_parquet_files(paths, filesystem=filesystem).select_columns([*columns, "split"])
    return ds.filter(expr=col("split") == "train").select_columns(columns)


def train_classes(plan: GenerationPlan) -> tuple[int, ...]:
    """The classes the train latents hold, sorted. Read here with pyarrow, two small columns per shard: a Ray
    Data job would cost more in start-up than the read itself."""
    paths, filesystem = _shard_paths(plan)
    classes: set[int] = set()
    for path in paths:
        table = pq.read_table(path, columns=[LABEL, "split"], filesystem=filesystem)
        train = pc.equal(table.column("split"), "train")
        classes.update(pc.unique(table.column(LABEL).filter(train)).to_pylist())
    return tuple(sorted(classes))


def generation_datasets(plan: GenerationPlan) -> dict[str, ray.data.Dataset]:
    """{"train": float32 latents (+ int64 labels), "reference": N held-out uint8 tubelets}."""
    prepare_data_context()
    dtype, conditional = plan.latent_dtype, plan.conditional

    def decode(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = {LATENT: to_float32(batch[LATENT], dtype)}
        if conditional:
            rows[LABEL] = batch[LABEL].astype(np.int64)
        return rows

    train = _train_latents(plan, [LATENT, LABEL] if conditional else [LATENT]).map_batches(decode, batch_format="numpy")
    if not plan.train_streams:
        train = cached_and_repeated(train, plan.train_rows, plan.config.steps, plan.config.global_batch_size)
    reference = read_tubelets(plan.shards, media_type=plan.config.media_type, split="val")
    reference = reference.select_columns(["pixels"]).limit(plan.samples).materialize()
    return {"train": train, "reference": reference}
