"""Checkpoints of a run inside Ray Train, which a restarted worker group and a re-run resume from.

Every rank writes into a local folder that it reports to `ray.train.report`; Ray merges the ranks' folders
into one checkpoint in the run's storage and keeps the last `keep_checkpoints`. Beside what the run's state
writes (`RunState.save`), a checkpoint holds the step and each rank's random streams, and the final one the
export. Resuming reads the latest through `ray.train.get_checkpoint()`, which Ray hands to a restarted worker
group and to a re-run of the same `RunConfig(name, storage_path)`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Callable

import ray.train
from ray.train import Checkpoint

from workflows.runs.rng import restore_rng, save_rng
from workflows.runs.spec import RunState

STEP_FILE = "train_state.json"  # the step counter
EXPORT_DIR = "export"  # the final checkpoint's export, written by rank 0


def save_and_report(state: RunState, step: int, metrics: dict[str, float], rank: int,
                    export: Callable[[Path], None] | None = None) -> None:  # fmt: skip
    """Saves the run's state and reports it to Ray Train as checkpoint `step-{step}` (every rank must call it:
    a ZeRO engine's save is a collective). `export`, when given, writes into `export/` on rank 0."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        state.save(folder, rank)
        save_rng(folder, rank, state.stream)
        if rank == 0:
            (folder / STEP_FILE).write_text(json.dumps({"step": step}))
            if export is not None:
                export(folder / EXPORT_DIR)
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp), checkpoint_dir_name=f"step-{step:08d}")


def restore_latest(state: RunState, rank: int) -> int:
    """Loads the latest checkpoint into this rank's state and streams; returns its step, or 0 when there is none."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return 0
    with checkpoint.as_directory() as name:
        folder = Path(name)
        state.load(folder, rank)
        restore_rng(folder, rank, state.stream)
        return int(json.loads((folder / STEP_FILE).read_text())["step"])
