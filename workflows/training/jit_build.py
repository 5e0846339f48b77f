"""DeepSpeed's JIT build of its CPU communication op (`deepspeed_shm_comm`), which every process that starts
DeepSpeed's communication loads or builds, in the extensions folder (TORCH_EXTENSIONS_DIR, else torch's
default root; `make install` builds it there once). Two things make that build come back when nothing changed:

- **Two ninjas.** torch runs the `ninja` first on PATH. The venv has its own (a DeepSpeed dependency) and the
  system often another, of a version whose build log the first cannot read: each then discards the other's
  log and rebuilds (about a minute on 2 cores, every worker of the node waiting), so a driver started with the
  venv on PATH and one started without rebuild in turn. Every process here uses the ninja installed beside
  its own Python (`use_the_environments_ninja`), so the build depends on the environment, not on a shell's PATH.
- **A killed build's lock.** A build that is killed part-way (a cancelled job, a killed worker or test) leaves
  the `lock` file behind, and torch waits on a lock with no end, before the first step, with nothing on the
  console. The build takes about a minute, so a lock older than STALE_AFTER_S was left by a build that is gone.
  Before it builds its engine, each worker waits for the locks in the folder (which is per node) to go: a
  build in progress removes its own; one that was killed is removed here once it is STALE_AFTER_S old, and
  the log says so. A run restarted right after a killed build therefore waits at most STALE_AFTER_S.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
import time

from torch.utils.cpp_extension import get_default_build_root

STALE_AFTER_S = 600.0

logger = logging.getLogger(__name__)


def use_the_environments_ninja(executable: str = sys.executable) -> str | None:
    """Puts the folder of `executable` (this Python) first on this process's PATH when a `ninja` is installed
    there, so that the JIT build runs that ninja whatever PATH the process was started with; returns the
    ninja it chose, or None (no ninja beside this Python: PATH is left as it is)."""
    folder = os.path.dirname(executable)
    ninja = os.path.join(folder, "ninja")
    if not os.access(ninja, os.X_OK):
        return None
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != folder]
    os.environ["PATH"] = os.pathsep.join([folder, *path])
    return ninja


def build_deepspeed_cpu_op() -> None:
    """Loads DeepSpeed's CPU communication op, building it first if it is not built (what `make install` runs)."""
    from deepspeed.comm.torch import build_shm_op

    use_the_environments_ninja()
    build_shm_op()


def extensions_root() -> str:
    return os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()


def build_locks(root: str) -> list[str]:
    """The build locks under `root`, one or two levels down (torch's default root adds a folder per Python and
    accelerator)."""
    return glob.glob(os.path.join(root, "*", "lock")) + glob.glob(os.path.join(root, "*", "*", "lock"))


def settle_build_locks(root: str | None = None, stale_after_s: float = STALE_AFTER_S, poll_s: float = 1.0
                       ) -> list[str]:  # fmt: skip
    """Returns once no build lock is left under `root`: waits while a lock is younger than `stale_after_s`
    (a build in progress removes it when done) and removes those older; returns the paths it removed."""
    root = root or extensions_root()
    removed: list[str] = []
    waiting_on: set[str] = set()
    while True:
        fresh = []
        for lock in build_locks(root):
            try:
                age = time.time() - os.path.getmtime(lock)
                if age > stale_after_s:
                    os.remove(lock)
                    removed.append(lock)
                    logger.warning("removed %s: a JIT build lock %.0f s old, left by a build that was killed",
                                   lock, age)  # fmt: skip
                else:
                    fresh.append((lock, age))
            except FileNotFoundError:  # its build finished, or another worker on this node removed it first
                continue
        if not fresh:
            return removed
        for lock, age in fresh:
            if lock not in waiting_on:
                waiting_on.add(lock)
                logger.warning("waiting for %s (%.0f s old): a build in progress, or a killed one, removed once "
                               "it is %.0f s old", lock, age, stale_after_s)  # fmt: skip
        time.sleep(poll_s)
