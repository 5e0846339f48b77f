"""Whether the cluster can hold a run, checked before any work, so a run that cannot fit says so at once
instead of waiting forever for CPUs that its own workers hold."""

from __future__ import annotations

from typing import Callable

from workflows.runs.spec import RunSpec

DATA_READ_CPUS = 1  # a streaming train split's read tasks run beside the workers and need a CPU of their own


class ClusterTooSmall(RuntimeError):
    """The cluster cannot hold the run; the message says what is missing and how to fix it."""


def resources_needed(num_workers: int, use_gpu: bool, streams: bool) -> dict[str, float]:
    """One CPU per worker (Ray Train's default), one GPU each on GPU runs, and a CPU for Ray Data when the
    train split streams (a cached split and the held-out rows are read by the driver before the workers start)."""
    need = {"CPU": float(num_workers + (DATA_READ_CPUS if streams else 0))}
    if use_gpu:
        need["GPU"] = float(num_workers)
    return need


def check_room(who: str, workers: str, num_workers: int, use_gpu: bool, streams: bool, cluster: dict[str, float],
               hint: Callable[[str, float], str]) -> None:
    """Raises ClusterTooSmall with one line when `cluster` (ray.cluster_resources()) lacks what the run needs;
    `workers` names them in that line (e.g. "2 training workers"), `hint(resource, amount)` says what to do."""
    for resource, amount in resources_needed(num_workers, use_gpu, streams).items():
        have = cluster.get(resource, 0.0)
        if have >= amount:
            continue
        streaming = " + 1 for Ray Data's read tasks" if streams and resource == "CPU" else ""
        raise ClusterTooSmall(f"{who} needs {amount:g} {resource} ({workers}{streaming}) but the cluster has "
                              f"{have:g}: {hint(resource, amount)}")


def check_cluster_can_hold(spec: RunSpec, cluster: dict[str, float]) -> None:
    """`check_room` for a planned run."""
    s = spec.scaling
    check_room(spec.who(), f"{s.num_workers} {spec.worker_noun}", s.num_workers, s.use_gpu, spec.train_streams, cluster,
               spec.room_hint)
