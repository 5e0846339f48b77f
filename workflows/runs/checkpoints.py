"""Checkpoints of a run inside Ray Train, which a restarted worker group and a re-run resume from.

Every rank writes into a local folder that it reports to `ray.train.report`; Ray merges the ranks' folders
into one checkpoint in the run's storage and keeps the last `keep_checkpoints`. Beside what the run's state
writes (`RunState.save`), a checkpoint holds the step, the run it belongs to (one Ray Train run may train
several MLflow runs in turn: workflows/runs/worker.py) and each rank's random streams, and the final one the
export. Resuming reads the latest through `ray.train.get_checkpoint()`, which Ray hands to a restarted worker
group and to a re-run of the same `RunConfig(name, storage_path)`.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow.fs
import ray.train
from ray.train import Checkpoint

from workflows.runs.rng import restore_rng, save_rng
from workflows.runs.spec import RunState

STEP_FILE = "train_state.json"  # the step counter and the checkpoint's owner
EXPORT_DIR = "export"  # the final checkpoint's export, written by rank 0


@dataclass(frozen=True)
class Owner:
    """Whose checkpoint it is: the MLflow run, and the fit (one `TorchTrainer.fit()` call) that wrote it."""

    run_id: str
    fit: str


def checkpoint_dir_name(run_id: str, step: int) -> str:
    return f"{run_id}-step-{step:08d}"


def save_and_report(state: RunState, step: int, metrics: dict[str, float], rank: int, owner: Owner,
                    export: Callable[[Path], None] | None = None) -> None:  # fmt: skip
    """Saves the run's state and reports it to Ray Train as a checkpoint of `owner` at `step` (every rank must
    call it: a ZeRO engine's save is a collective). `export`, when given, writes into `export/` on rank 0."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        state.save(folder, rank)
        save_rng(folder, rank, state.stream)
        if rank == 0:
            (folder / STEP_FILE).write_text(json.dumps({"step": step, "run_id": owner.run_id, "fit": owner.fit}))
            if export is not None:
                export(folder / EXPORT_DIR)
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp),
                         checkpoint_dir_name=checkpoint_dir_name(owner.run_id, step))  # fmt: skip


def latest_checkpoint() -> tuple[Checkpoint | None, dict]:
    """The checkpoint Ray Train hands this worker group (None when there is none) and what its STEP_FILE says
    (step, run_id, fit; a checkpoint from before owners were recorded has the step alone)."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None, {}
    with checkpoint.filesystem.open_input_stream(f"{checkpoint.path}/{STEP_FILE}") as stream:
        return checkpoint, json.loads(stream.read())


def restore(state: RunState, rank: int, checkpoint: Checkpoint) -> int:
    """Loads `checkpoint` into this rank's state and streams; returns its step, or 0 when the checkpoint is gone:
    a re-run's group may train other runs before the one that wrote it, and Ray keeps only the latest few."""
    found = checkpoint.filesystem.get_file_info(f"{checkpoint.path}/{STEP_FILE}")
    if found.type == pyarrow.fs.FileType.NotFound:
        return 0
    with checkpoint.as_directory() as name:
        folder = Path(name)
        state.load(folder, rank)
        restore_rng(folder, rank, state.stream)
        return int(json.loads((folder / STEP_FILE).read_text())["step"])
