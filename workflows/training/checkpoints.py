"""Checkpoints of a DeepSpeed run inside Ray Train, and the final export that `ViTok.from_pretrained` loads.

A checkpoint is written by every rank (`engine.save_checkpoint` must run on all of them or it hangs) into
a local folder that each rank reports to `ray.train.report`; Ray merges the ranks' folders into one
checkpoint in the run's storage and keeps the last `keep_checkpoints`. Besides the engine (weights, fp32
masters, optimiser and schedule) it holds what exact resumption needs: the step, the objective's own state
(the discriminator), the EMA of the weights, and each rank's random streams. Resuming reads the latest one
through `ray.train.get_checkpoint()`, which Ray hands to a restarted worker group and to a re-run of the
same `RunConfig(name, storage_path)`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Callable

import ray.train
import torch
from ray.train import Checkpoint
from safetensors.torch import load_file, save_file

from workflows.training.rng import restore_rng, save_rng
from workflows.training.weights import WeightEMA

ENGINE_TAG = "engine"  # DeepSpeed's folder inside a checkpoint
STATE_FILE = "train_state.json"  # the step counter
EMA_FILE = "ema.safetensors"
EXPORT_DIR = "export"  # safetensors + config.json, written by rank 0 into the final checkpoint
RAW_EXPORT_DIR = "raw"  # inside the export, when it holds EMA weights: the raw weights, loadable alike


def save_and_report(
    engine,
    step: int,
    metrics: dict[str, float],
    rank: int,
    objective,
    ema: WeightEMA | None,
    augment: torch.Generator,
    export: Callable[[Path], None] | None = None,
) -> None:
    """Saves the run's whole state on every rank and reports it to Ray Train as checkpoint `step-{step}`.

    `export`, when given, is called with the checkpoint folder on every rank (gathering the weights is a
    collective under ZeRO) and writes the final weights into `export/` on rank 0.
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        engine.save_checkpoint(tmp, tag=ENGINE_TAG, client_state={"step": step})
        save_rng(folder, rank, augment)
        average = ema.full_state() if ema is not None else None  # a collective: every rank gathers
        if rank == 0:
            (folder / STATE_FILE).write_text(json.dumps({"step": step}))
            objective.save(folder)
            if average is not None:
                save_file({k: v.contiguous() for k, v in average.items()}, str(folder / EMA_FILE))
        if export is not None:
            export(folder / EXPORT_DIR)
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp), checkpoint_dir_name=f"step-{step:08d}")


def restore_latest(engine, rank: int, objective, ema: WeightEMA | None, augment: torch.Generator) -> int:
    """Loads the latest checkpoint on every rank; returns its step, or 0 when there is none."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return 0
    with checkpoint.as_directory() as name:
        folder = Path(name)
        engine.load_checkpoint(name, tag=ENGINE_TAG)
        objective.load(folder)
        if ema is not None and (folder / EMA_FILE).is_file():
            ema.load_full_state(load_file(str(folder / EMA_FILE)))
        restore_rng(folder, rank, augment)
        return int(json.loads((folder / STATE_FILE).read_text())["step"])
