"""Random streams of a worker: seeded per rank, saved in every checkpoint, restored on resume.

Each rank draws its own noise and augmentations (the same stream on every rank would make the ranks' noise
identical, which data parallelism does not intend). Besides torch's, numpy's and python's global streams, a
run keeps one generator of its own (the tokenizer's augmentations, the generator's flow noise). After a resume
every stream continues where the checkpoint left it rather than restarting from step 0.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

RNG_DIR = "rng"


def rank_seed(seed: int, rank: int) -> int:
    """The seed of `rank`'s streams in a run seeded `seed`."""
    return seed * 1000 + rank


def seed_rank(seed: int, rank: int) -> None:
    """Seeds torch, numpy and python for this rank."""
    torch.manual_seed(rank_seed(seed, rank))
    np.random.seed(rank_seed(seed, rank))
    random.seed(rank_seed(seed, rank))


def save_rng(folder: Path, rank: int, stream: torch.Generator) -> None:
    state = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "augment": stream.get_state(),  # the key of the run's own stream
    }
    (folder / RNG_DIR).mkdir(exist_ok=True)
    torch.save(state, folder / RNG_DIR / f"rank{rank}.pt")


def restore_rng(folder: Path, rank: int, stream: torch.Generator) -> bool:
    """Restores this rank's streams from a checkpoint folder; False when it holds none for this rank."""
    path = folder / RNG_DIR / f"rank{rank}.pt"
    if not path.is_file():
        return False
    state = torch.load(path, weights_only=False)  # numpy's state is a tuple with an ndarray
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    stream.set_state(state["augment"])
    return True
