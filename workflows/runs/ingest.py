"""The data plumbing every run shares: Ray Data read in the shards' order, a train split cached and repeated
to cover the run, and the workers' endless, seeded batch iterator that a resumed run fast-forwards."""

from __future__ import annotations

from typing import Iterator

import ray
import torch


def prepare_data_context() -> None:
    """Quiet, order-preserving Ray Data for the reads on the driver and Ray Train's ingest."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver follows the run's own progress
    # Rows in the shards' order, in the reads here and in Ray Train's ingest (which inherits this option):
    # the same run then sees the same data order on every attempt, which exact resumption relies on.
    context.execution_options.preserve_order = True


def cached_and_repeated(train: ray.data.Dataset, train_rows: int, steps: int, global_batch: int) -> ray.data.Dataset:
    """The train split read once, here, and repeated so that one Ray Data epoch covers the whole run.

    Read on the driver before the workers reserve their CPUs (read later, inside the workers, its read tasks
    could wait forever on a cluster whose CPUs the workers hold); on small corpora the per-epoch start-up of the
    streaming executor would otherwise cost more than a training step.
    """
    train = train.materialize()
    repeats = -(-steps * global_batch // train_rows) + 1  # +1: drop_last leaves a partial batch per worker
    if repeats > 1:
        train = train.union(*([train] * (repeats - 1)))
    return train


def endless_batches(shard, batch_size: int, shuffle_buffer: int, seed: int) -> Iterator[dict[str, torch.Tensor]]:
    """Epoch after epoch over this worker's shard of the train split, as batches of torch tensors by column.

    The local shuffle is seeded per epoch (`seed`, epoch), so the order replays: a resumed run draws and drops
    the batches its checkpoint had used, which puts it where the checkpoint left the data. With several
    workers this holds too: under preserve_order Ray Data's split hands each block, in order, to the worker
    that has received the fewest rows so far, so which rank gets which batches depends on the blocks alone,
    not on timing (tests/integration/test_fault_tolerance.py resumes 2 workers exactly).
    """
    epoch = 0
    while True:
        for batch in shard.iter_torch_batches(
            batch_size=batch_size, local_shuffle_buffer_size=shuffle_buffer or None,
            local_shuffle_seed=(seed * 100_003 + epoch) if shuffle_buffer else None, drop_last=True,
        ):  # fmt: skip
            yield batch
        epoch += 1
