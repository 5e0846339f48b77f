"""Checkpoints of a DeepSpeed run inside Ray Train, and the final export that `ViTok.from_pretrained` loads.

A checkpoint is written by every rank (`engine.save_checkpoint` must run on all of them or it hangs) into
a local folder that each rank reports to `ray.train.report`; Ray merges the ranks' folders into one
checkpoint in the run's storage and keeps the last `keep_checkpoints`. Resuming reads the latest one
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

ENGINE_TAG = "engine"  # DeepSpeed's folder inside a checkpoint
STATE_FILE = "train_state.json"  # the step counter and anything else the loop needs to resume
EXPORT_DIR = "export"  # safetensors + config.json, written by rank 0 into the final checkpoint


def save_and_report(
    engine,
    step: int,
    metrics: dict[str, float],
    rank: int,
    objective=None,
    export: Callable[[Path], None] | None = None,
) -> None:
    """Saves the engine on every rank (and the objective's own state, e.g. the discriminator, from rank 0)
    and reports it to Ray Train as checkpoint `step-{step}`.

    `export`, when given, is called with the checkpoint folder on every rank (ZeRO-3 needs all ranks to
    gather the weights) and writes the final weights into `export/` on rank 0.
    """
    with tempfile.TemporaryDirectory() as tmp:
        engine.save_checkpoint(tmp, tag=ENGINE_TAG, client_state={"step": step})
        if rank == 0:
            Path(tmp, STATE_FILE).write_text(json.dumps({"step": step}))
            if objective is not None:
                objective.save(Path(tmp))
        if export is not None:
            export(Path(tmp) / EXPORT_DIR)
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp), checkpoint_dir_name=f"step-{step:08d}")


def restore_latest(engine, objective=None) -> int:
    """Loads the latest checkpoint into `engine` (and `objective`) on every rank; returns its step, or 0."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return 0
    with checkpoint.as_directory() as folder:
        engine.load_checkpoint(folder, tag=ENGINE_TAG)
        if objective is not None:
            objective.load(Path(folder))
        return int(json.loads(Path(folder, STATE_FILE).read_text())["step"])


def gathered_state_dict(engine, zero_stage: int) -> dict[str, torch.Tensor]:
    """The full module state dict on every rank. Under ZeRO-3 each rank holds a slice of every parameter,
    so all ranks must enter the gather together."""
    module = engine.module
    if zero_stage < 3:
        return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    import deepspeed

    with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None):
        return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
