"""Connecting to Ray, one way for every entry point: the cluster a job was submitted to, or a local one.

Data prep and the training workflows both call `connect_ray`; the first call decides, later ones reuse it.
"""

from __future__ import annotations

import logging
import os

import ray

# A local Ray advertises this many logical CPUs beyond the machine's cores: training workers each reserve
# one CPU and pin their own torch threads, and the spare slots let Ray Data's read tasks and the split
# coordinator run beside them instead of waiting for a CPU that the workers hold.
LOCAL_SPARE_CPUS = 2

# glibc malloc settings for every Ray worker process of the job (env vars, read when a process starts).
# Why: glibc serves blocks above its mmap threshold (at most 32 MiB) with fresh pages and unmaps them when
# freed, and a thread outside the main one (Ray Train runs the training loop in one) always mmaps blocks
# larger than its 64 MiB arena heap. DeepSpeed's ZeRO optimisers allocate temporaries the size of all
# parameters (345 MB of fp32 for S-S/16) on every step, so every step page-faulted them in
# (bench/train_step.py measures the trainer with these settings). The cost is a heap that stays at its peak,
# which a training process reaches on its first step anyway.
ALLOCATOR_ENV = {
    "MALLOC_ARENA_MAX": "1",  # every thread allocates from the main heap (sbrk), which can hold any size
    "MALLOC_MMAP_THRESHOLD_": str(1 << 34),  # large blocks from the heap too, not one mmap each
    "MALLOC_TRIM_THRESHOLD_": str(1 << 36),  # freed memory stays in the heap for the next step
    "MALLOC_TOP_PAD_": str(1 << 30),  # grow the heap 1 GiB at a time
}


def connect_ray(verbose: bool = False) -> None:
    """Joins the cluster named by RAY_ADDRESS (set for `ray job submit` drivers), else starts a local Ray; either
    way the job's workers start with ALLOCATOR_ENV.

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
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, **options)


def usable_cpus() -> int:
    """CPUs Ray has free now for CPU-bound actors, never more than this machine's cores on a one-node
    (local) cluster, whose extra logical CPUs are slots for light tasks, not cores."""
    free = int(ray.available_resources().get("CPU", 1)) or 1
    if len([n for n in ray.nodes() if n["Alive"]]) == 1:
        free = min(free, os.cpu_count() or 1)
    return free
