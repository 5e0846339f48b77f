"""Generator ingest: latent shards -> Ray Datasets for Ray Train, read in the driver, and the workers' batches.

As the tokenizer's ingest (workflows/training/ingest.py), everything that can be read before the workers
reserve their CPUs is read here first: the train latents when they are small enough to hold (then repeated so
one Ray Data epoch covers the run), the classes they hold, and the held-out reals. Read later, inside the
workers, those reads could wait forever on a cluster whose CPUs the workers hold. A train split too large to
hold streams, and its read tasks need a CPU beside the workers (the driver checks the cluster has one).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray
import torch
from ray.data.expressions import col

from data_prep import s3
from data_prep.reader import read_tubelets
from workflows.generation.plan import GenerationPlan
from workflows.latents.schema import LATENT, to_float32

LABEL = "label"


def _shard_paths(plan: GenerationPlan) -> tuple[list[str], object]:
    """(paths, pyarrow filesystem or None) of the plan's latent shards (only those the manifest names)."""
    if s3.is_s3(plan.latents):  # pyarrow paths on S3 are "bucket/key", without the scheme
        return [p[len("s3://"):] for p in plan.latent_shards], s3.pyarrow_filesystem(s3.S3Settings())
    return list(plan.latent_shards), None


def _train_latents(plan: GenerationPlan, columns: list[str]) -> ray.data.Dataset:
    paths, filesystem = _shard_paths(plan)
    ds = ray.data.read_parquet(paths, filesystem=filesystem).select_columns([*columns, "split"])
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


def generation_datasets(plan: GenerationPlan) -> tuple[dict[str, ray.data.Dataset], tuple[int, ...]]:
    """({"train": float32 latents (+ int64 labels), "reference": N held-out uint8 tubelets}, the classes the
    train latents hold, sorted; () when unconditional)."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver follows the run's own progress
    # Rows in the shards' order, here and in Ray Train's ingest: the same run sees the same data order on
    # every attempt, which exact resumption relies on.
    context.execution_options.preserve_order = True

    dtype, conditional = plan.latent_dtype, plan.conditional

    def decode(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = {LATENT: to_float32(batch[LATENT], dtype)}
        if conditional:
            rows[LABEL] = batch[LABEL].astype(np.int64)
        return rows

    train = _train_latents(plan, [LATENT, LABEL] if conditional else [LATENT]).map_batches(decode, batch_format="numpy")
    if not plan.train_streams:
        train = train.materialize()
        samples_needed = plan.config.steps * plan.config.global_batch_size
        repeats = -(-samples_needed // plan.train_rows) + 1  # +1: drop_last leaves a partial batch per worker
        if repeats > 1:
            train = train.union(*([train] * (repeats - 1)))
    classes = train_classes(plan) if conditional else ()
    reference = read_tubelets(plan.shards, media_type=plan.config.media_type, split="val")
    reference = reference.select_columns(["pixels"]).limit(plan.samples).materialize()
    return {"train": train, "reference": reference}, classes


def latent_batches(
    shard, batch_size: int, shuffle_buffer: int, seed: int, skip: int = 0
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Epoch after epoch over this worker's shard of the train latents: (latents (B, T', H', W', c) float32,
    labels (B,) int64 or None).

    The local shuffle is seeded per epoch, so the order replays; `skip` batches are drawn and dropped first,
    which puts a resumed run where its checkpoint left the data (exact for one worker, as the tokenizer's).
    """
    epoch = 0
    while True:
        for batch in shard.iter_torch_batches(
            batch_size=batch_size, local_shuffle_buffer_size=shuffle_buffer or None,
            local_shuffle_seed=(seed * 100_003 + epoch) if shuffle_buffer else None, drop_last=True,
        ):  # fmt: skip
            if skip:
                skip -= 1
                continue
            yield batch[LATENT], batch.get(LABEL)
        epoch += 1
