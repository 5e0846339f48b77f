"""Where run outputs go by default: under `work/` in the working folder, which `make clean` removes, so
two checkouts never share checkpoints and nothing is left in the home folder."""

from __future__ import annotations

from pathlib import Path

from workflows.config import absolute_location

WORK_DIR = Path("work")
RAY_STORAGE = WORK_DIR / "ray_results"  # Ray Train's storage: checkpoints of every run
SWEEP_EXPORTS = WORK_DIR / "sweep_exports"  # stage-1 exports fetched from a tracking server for stage 2
REGISTRY_EXPORTS = WORK_DIR / "registry_exports"  # exports a run starts from, fetched from runs:/ or models:/
SWEEP_LATENTS = WORK_DIR / "sweep_latents"  # the generation probe's latent caches, one per tokenizer run


def storage_location(storage: str | None) -> str:
    """Ray Train's `RunConfig(storage_path)`: `storage` (a local folder, a path every node shares, or
    s3://), else `work/ray_results`; local paths absolute, as Ray requires."""
    return absolute_location(storage) if storage else str(RAY_STORAGE.resolve())
