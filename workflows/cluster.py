"""Connecting to Ray: the cluster a job was submitted to, or an embedded local one."""

from __future__ import annotations

import os

import ray


def connect_ray() -> None:
    """Joins the cluster named by RAY_ADDRESS (set for `ray job submit` drivers), else starts a local Ray.

    A local Ray advertises two more logical CPUs than the machine has: the training workers each reserve
    one and pin their own torch threads, and the spare slots let Ray Data's read tasks and the split
    coordinator run beside them instead of waiting forever for a free CPU.
    """
    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=True)
    else:
        # "local", not auto-detect: a cluster that `ray start` left on this machine is not joined by accident
        ray.init(address="local", num_cpus=(os.cpu_count() or 2) + 2, include_dashboard=False, log_to_driver=True)
