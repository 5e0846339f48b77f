"""Connecting to Ray, one way for every entry point: the cluster a job was submitted to, or a local one.

Data prep and the training workflows both call `connect_ray`; the first call decides, later ones reuse it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import ray

# A local Ray advertises this many logical CPUs beyond the machine's cores: training workers each reserve
# one CPU and pin their own torch threads, and the spare slots let Ray Data's read tasks and the split
# coordinator run beside them instead of waiting for a CPU that the workers hold.
LOCAL_SPARE_CPUS = 2

# The allocator every Ray worker process of the job starts with (env vars, read when a process starts):
# jemalloc, which Ray's Linux wheels ship (Ray preloads it into its own raylet and GCS), with freed memory
# kept for reuse instead of being returned to the OS.
# Why: DeepSpeed's step allocates temporaries the size of all parameters (345 MB of fp32 for S-S/16) on every
# step, and Ray Train runs the training loop in a thread other than the main one, where glibc serves any block
# above its 64 MiB thread heap with fresh pages and unmaps it when freed, so every step page-faulted them in.
# glibc's remedy, one arena for all threads, made the OpenMP threads of the bf16 matmuls queue on its lock;
# jemalloc's per-thread caches avoid both (bench/training/train_step.py measures the trainer with it). The cost is a
# process that stays at its peak memory, which a training process reaches on its first step anyway. Without
# the library (Ray's macOS wheels) workers keep the system allocator.
RAY_JEMALLOC = Path(ray.__file__).parent / "core" / "libjemalloc.so"
ALLOCATOR_ENV = (
    {"LD_PRELOAD": str(RAY_JEMALLOC), "MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1"}
    if RAY_JEMALLOC.is_file() else {}
)


# Ray Train starts a preemption watcher (an actor process of its own, about 2 CPU-s to start on a 2-core machine)
# with every worker group, to end the run gracefully when a node is about to be taken away (spot instances).
# A local Ray lives and dies with this driver's machine, so there is nothing to watch: it is off there, unless the
# user set the variable. A cluster joined through RAY_ADDRESS keeps it.
PREEMPTION_WATCHER_ENV = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"
LOCAL_RAY_ENV = {PREEMPTION_WATCHER_ENV: "0"}  # read in the driver, passed on to Ray Train's controller at each fit


def local_ray_env() -> dict[str, str]:
    """What the driver of a local Ray adds to its environment: LOCAL_RAY_ENV, less what the user has set."""
    return {name: value for name, value in LOCAL_RAY_ENV.items() if name not in os.environ}


def connect_ray(verbose: bool = False) -> None:
    """Joins the cluster named by RAY_ADDRESS (set for `ray job submit` drivers), else starts a local Ray; either
    way the job's workers start with ALLOCATOR_ENV. On a local one, the driver's environment gets local_ray_env()
    (Ray Train without its preemption watcher).

    "local" rather than auto-detection, so a head that `ray start` left on this machine is never joined by
    accident. Quiet unless `verbose`: Ray's own INFO lines and the workers' stdout/stderr (DeepSpeed's and
    Ray Train's chatter) stay in Ray's log files (/tmp/ray/session_latest/logs) instead of the console.
    """
    if ray.is_initialized():
        return
    options = {
        "log_to_driver": verbose,
        "logging_level": logging.INFO if verbose else logging.WARNING,
        # Merged with a submitted job's own runtime_env (Ray raises on a conflicting value).
        "runtime_env": {"env_vars": ALLOCATOR_ENV},
    }
    if os.environ.get("RAY_ADDRESS"):
        ray.init(**options)
    else:
        cpus = (os.cpu_count() or 1) + LOCAL_SPARE_CPUS
        os.environ.update(local_ray_env())
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, **options)


def usable_cpus() -> int:
    """CPUs Ray has free now for CPU-bound actors, never more than this machine's cores on a one-node
    (local) cluster, whose extra logical CPUs are slots for light tasks, not cores."""
    free = int(ray.available_resources().get("CPU", 1)) or 1
    if len([n for n in ray.nodes() if n["Alive"]]) == 1:
        free = min(free, os.cpu_count() or 1)
    return free
