"""Stale JIT-build locks: DeepSpeed builds its CPU communication op (`deepspeed_shm_comm`) on first use, under
torch's file lock in the extensions folder (TORCH_EXTENSIONS_DIR, else torch's default root). A build that is
killed part-way (a cancelled job, a killed worker or test) leaves the `lock` file behind, and torch then waits
on it forever in every later run on that node, before the first step, with nothing on the console.

The build takes well under a minute, so a lock older than STALE_AFTER_S was left by a build that is gone. Each
worker removes such locks before it builds its engine (the folder is per node), and says so in its log.
"""

from __future__ import annotations

import glob
import logging
import os
import time

from torch.utils.cpp_extension import get_default_build_root

STALE_AFTER_S = 600.0
logger = logging.getLogger(__name__)


def extensions_root() -> str:
    return os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()


def remove_stale_build_locks(root: str | None = None, stale_after_s: float = STALE_AFTER_S) -> list[str]:
    """Removes the build locks under `root` (one or two levels down: torch's default root adds a folder per
    Python and accelerator) whose age passes `stale_after_s`; returns their paths."""
    root = root or extensions_root()
    removed = []
    for lock in glob.glob(os.path.join(root, "*", "lock")) + glob.glob(os.path.join(root, "*", "*", "lock")):
        try:
            age = time.time() - os.path.getmtime(lock)
            if age > stale_after_s:
                os.remove(lock)
                removed.append(lock)
                logger.warning("removed %s: a JIT build lock %.0f s old, left by a build that was killed", lock, age)
        except FileNotFoundError:  # another worker on this node removed it first, or the build finished
            continue
    return removed
