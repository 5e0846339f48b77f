"""Training ingest: tubelet shards -> Ray Datasets for Ray Train, and per-batch augmentation on the worker."""

from __future__ import annotations

from typing import Iterator

import ray
import torch

from data_prep.reader import read_tubelets
from workflows.config import TrainConfig


def train_is_cached(config: TrainConfig, train_rows: int, sample_bytes: int) -> bool:
    """Whether the train split is small enough to be read once, up front, and repeated from memory."""
    return train_rows * sample_bytes <= config.data.cache_max_bytes


def training_datasets(config: TrainConfig, train_rows: int, val_rows: int, sample_bytes: int) -> dict:
    """The train split (pixels) and val, when the shards have one, as Ray Datasets, read in the driver.

    `sample_bytes` is the size of one tubelet. The validation rows that evaluation uses are read here, before
    the training workers reserve their CPUs: read later, inside the workers, their read tasks could wait
    forever on a cluster whose CPUs the workers hold. A train split small enough to cache is likewise read
    once here and repeated so that one Ray Data epoch covers the whole run (on small corpora the per-epoch
    start-up of the streaming executor would otherwise cost more than a training step); a larger one
    streams, and its read tasks need CPUs beside the workers' (the driver checks the cluster has them).
    """
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the trainer logs its own progress
    # Rows in the shards' order, in the reads here and in Ray Train's ingest (which inherits this option):
    # the same config then sees the same data order run after run, which exact resumption relies on.
    context.execution_options.preserve_order = True

    def split(name: str, columns: list[str]) -> ray.data.Dataset:
        ds = read_tubelets(config.data.shards, media_type=config.data.media_type, split=name)
        return ds.select_columns(columns)

    train = split("train", ["pixels"])
    samples_needed = config.train.steps * config.train.global_batch_size
    repeats = -(-samples_needed // train_rows) + 1  # +1: drop_last leaves a partial batch per worker
    if train_is_cached(config, train_rows, sample_bytes):
        train = train.materialize()
        if repeats > 1:
            train = train.union(*([train] * (repeats - 1)))
    datasets = {"train": train}
    if val_rows > 0:
        # With each row's id and source, which say what evaluation's intervals resample (data.eval_unit).
        val = split("val", ["pixels", "sample_id", "source_uri"])
        datasets["val"] = val.limit(config.train.eval_samples).materialize()
    return datasets


def endless_batches(shard, batch_size: int, shuffle_buffer: int, seed: int, skip: int = 0) -> Iterator[torch.Tensor]:
    """Epoch after epoch over this worker's shard of the train split, as uint8 (B, T, H, W, 3) batches.

    The local shuffle is seeded per epoch (`seed`, epoch), so the order replays; `skip` batches are drawn and
    dropped first, which puts a resumed run where its checkpoint left the data (exact for one worker; with
    several, Ray Data may hand blocks to the workers in another order, so each worker sees the same samples
    in total but not in the same order).
    """
    epoch = 0
    while True:
        for batch in shard.iter_torch_batches(
            batch_size=batch_size, local_shuffle_buffer_size=shuffle_buffer or None,
            local_shuffle_seed=(seed * 100_003 + epoch) if shuffle_buffer else None, drop_last=True,
        ):
            if skip:
                skip -= 1
                continue
            yield batch["pixels"]
        epoch += 1


def augment(pixels: torch.Tensor, crop: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random crop to `crop` x `crop` (0: none) and random horizontal flip, per sample, on uint8 pixels.

    All frames of a tubelet get the same crop and flip, so motion inside a clip stays intact.
    """
    b, _, h, w, _ = pixels.shape
    if crop:
        tops = torch.randint(0, h - crop + 1, (b,), generator=generator).tolist()
        lefts = torch.randint(0, w - crop + 1, (b,), generator=generator).tolist()
        pixels = torch.stack([p[:, y : y + crop, x : x + crop] for p, y, x in zip(pixels, tops, lefts)])
    if flip:
        mirrored = torch.rand(b, generator=generator) < 0.5
        pixels = torch.where(mirrored.view(b, 1, 1, 1, 1), pixels.flip(3), pixels)
    return pixels


def center_crop(pixels: torch.Tensor, crop: int) -> torch.Tensor:
    """The deterministic counterpart of `augment` for evaluation."""
    if not crop:
        return pixels
    h, w = pixels.shape[2:4]
    top, left = (h - crop) // 2, (w - crop) // 2
    return pixels[:, :, top : top + crop, left : left + crop]
