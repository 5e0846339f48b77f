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


def connect_ray(verbose: bool = False) -> None:
    """Joins the cluster named by RAY_ADDRESS (set for `ray job submit` drivers), else starts a local Ray.

    "local" rather than auto-detection, so a head that `ray start` left on this machine is never joined by
    accident. Quiet unless `verbose`: Ray's own INFO lines and the workers' stdout/stderr (DeepSpeed's and
    Ray Train's chatter) stay in Ray's log files (/tmp/ray/session_latest/logs) instead of the console.
    """
    if ray.is_initialized():
        return
    options = {
        "log_to_driver": verbose,
        "logging_level": logging.INFO if verbose else logging.WARNING,
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
