"""Tokenizer ingest: tubelet shards -> Ray Datasets for Ray Train, and per-batch augmentation on the worker."""

from __future__ import annotations

import ray
import torch

from data_prep.reader import read_tubelets
from workflows.config import TrainConfig
from workflows.runs.ingest import cached_and_repeated, prepare_data_context


def train_is_cached(config: TrainConfig, train_rows: int, sample_bytes: int) -> bool:
    """Whether the train split is small enough to be read once, up front, and repeated from memory."""
    return train_rows * sample_bytes <= config.data.cache_max_bytes


def training_datasets(config: TrainConfig, train_rows: int, val_rows: int, cached: bool) -> dict:
    """The train split (pixels) and val, when the shards have one, as Ray Datasets, read in the driver.

    The validation rows that evaluation uses are read here, before the training workers reserve their CPUs:
    read later, inside the workers, their read tasks could wait forever on a cluster whose CPUs the workers
    hold. A `cached` train split is likewise read once here and repeated to cover the run; a larger one
    streams, and its read tasks need CPUs beside the workers' (the driver checks the cluster has them).
    """
    prepare_data_context()

    def split(name: str, columns: list[str]) -> ray.data.Dataset:
        ds = read_tubelets(config.data.shards, media_type=config.data.media_type, split=name)
        return ds.select_columns(columns)

    train = split("train", ["pixels"])
    if cached:
        train = cached_and_repeated(train, train_rows, config.train.steps, config.train.global_batch_size)
    datasets = {"train": train}
    if val_rows > 0:
        # With each row's id and source, which say what evaluation's intervals resample (data.eval_unit).
        val = split("val", ["pixels", "sample_id", "source_uri"])
        datasets["val"] = val.limit(config.train.eval_samples).materialize()
    return datasets


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
