"""What a training run needs from the cluster, checked before any work, so a run that cannot fit says so at
once instead of waiting forever for CPUs that its own workers hold."""

from __future__ import annotations

from workflows.training.ingest import train_is_cached
from workflows.training.plan import RunPlan

DATA_READ_CPUS = 1  # a streaming train split's read tasks run beside the workers and need a CPU of their own


class ClusterTooSmall(RuntimeError):
    """The cluster cannot hold the run; the message says what is missing and how to fix it."""


def resources_needed(plan: RunPlan) -> tuple[dict[str, float], bool]:
    """({resource: amount}, whether the train split streams) for one run: one CPU per training worker
    (Ray Train's default), one GPU each on GPU runs, and a CPU for Ray Data when the train split streams
    (a cached split and the validation rows are read by the driver before the workers start)."""
    t = plan.config.train
    streams = not train_is_cached(plan.config, plan.train_rows, plan.frames * plan.resolution**2 * 3)
    need = {"CPU": float(t.num_workers + (DATA_READ_CPUS if streams else 0))}
    if t.use_gpu:
        need["GPU"] = float(t.num_workers)
    return need, streams


def check_cluster_can_hold(plan: RunPlan, cluster: dict[str, float]) -> None:
    """Raises ClusterTooSmall with one line when `cluster` (ray.cluster_resources()) is too small for `plan`."""
    need, streams = resources_needed(plan)
    t = plan.config.train
    for resource, amount in need.items():
        have = cluster.get(resource, 0.0)
        if have >= amount:
            continue
        parts = f"{t.num_workers} training workers" + (" + 1 for Ray Data's read tasks" if streams and resource == "CPU"
                                                      else "")
        hint = (f"start Ray with more (e.g. `ray start --head --num-cpus {int(amount)}`), lower train.num_workers"
                if resource == "CPU" else "add GPU nodes or lower train.num_workers")
        if streams and resource == "CPU":
            hint += ", or raise data.cache_max_bytes so the train split is read once before training"
        raise ClusterTooSmall(f"run '{plan.name}' needs {amount:g} {resource} ({parts}) but the cluster has "
                              f"{have:g}: {hint}")
