"""Checkpoints of a generator run inside Ray Train, which a restarted worker group and a re-run resume from.

Every rank writes its random streams into a local folder; rank 0 also writes the DiT, the optimiser, the
schedule, the EMA and the step (identical on every rank under DDP). Each rank reports its folder to
`ray.train.report`, which merges them into one checkpoint in the run's storage and keeps the last
`keep_checkpoints`. Unlike a ZeRO checkpoint, this one loads at any number of workers.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import ray.train
import torch
from ray.train import Checkpoint
from torch import nn

from workflows.generation.ema import WeightAverage
from workflows.training.rng import restore_rng, save_rng

STATE_FILE = "generator_state.pt"
EXPORT_DIR = "export"  # in the final checkpoint: the DiT as save_pretrained writes it, with what sampling needs


def save_and_report(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    ema: WeightAverage | None,
    step: int,
    rank: int,
    noise: torch.Generator,
    export: Callable[[Path], None] | None = None,
) -> None:
    """Saves the run's state and reports it to Ray Train as checkpoint `step-{step}` (every rank must call it).

    `export`, when given, writes the final model into `export/` of the checkpoint (rank 0).
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        save_rng(folder, rank, noise)
        if rank == 0:
            state = {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "schedule": schedule.state_dict(), "ema": ema.state if ema is not None else None}  # fmt: skip
            torch.save(state, folder / STATE_FILE)
            if export is not None:
                export(folder / EXPORT_DIR)
        ray.train.report({"step": step}, checkpoint=Checkpoint.from_directory(tmp),
                         checkpoint_dir_name=f"step-{step:08d}")  # fmt: skip


def restore_latest(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    ema: WeightAverage | None,
    rank: int,
    noise: torch.Generator,
) -> int:
    """Loads the latest checkpoint into every rank's objects; returns its step, or 0 when there is none."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return 0
    with checkpoint.as_directory() as name:
        folder = Path(name)
        state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        if ema is not None:
            device = next(iter(ema.state.values())).device
            ema.state = {k: v.to(device) for k, v in state["ema"].items()}
        restore_rng(folder, rank, noise)
        return int(state["step"])
