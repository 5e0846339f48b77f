"""Training ingest: tubelet shards -> Ray Datasets for Ray Train, and per-batch augmentation on the worker."""

from __future__ import annotations

from typing import Iterator

import ray
import torch

from data_prep.reader import read_tubelets
from workflows.config import TrainConfig


def training_datasets(config: TrainConfig, train_rows: int, val_rows: int, sample_bytes: int) -> dict:
    """The train split (and val, when the shards have one) as pixel-only Ray Datasets.

    `sample_bytes` is the size of one tubelet; a train split small enough to cache is materialised once and
    repeated so that one Ray Data epoch covers the whole run (on small corpora the per-epoch start-up of
    the streaming executor would otherwise cost more than a training step).
    """
    ray.data.DataContext.get_current().enable_progress_bars = False  # the trainer logs its own progress

    def split(name: str) -> ray.data.Dataset:
        ds = read_tubelets(config.data.shards, media_type=config.data.media_type, split=name)
        return ds.select_columns(["pixels"])

    train = split("train")
    samples_needed = config.train.steps * config.train.global_batch_size
    repeats = -(-samples_needed // train_rows) + 1  # +1: drop_last leaves a partial batch per worker
    if repeats > 1 and train_rows * sample_bytes <= config.data.cache_max_bytes:
        train = train.materialize()
        train = train.union(*([train] * (repeats - 1)))
    datasets = {"train": train}
    if val_rows > 0:
        datasets["val"] = split("val")
    return datasets


def endless_batches(shard, batch_size: int, shuffle_buffer: int) -> Iterator[torch.Tensor]:
    """Epoch after epoch over this worker's shard of the train split, as uint8 (B, T, H, W, 3) batches."""
    while True:
        for batch in shard.iter_torch_batches(
            batch_size=batch_size, local_shuffle_buffer_size=shuffle_buffer or None, drop_last=True
        ):
            yield batch["pixels"]


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
