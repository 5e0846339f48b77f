"""Running a sweep's configs: resume by name, concurrency when the cluster has room, failures isolated.

- Resume: the parent run is found by its tags (`sweep` = name, `role` = sweep) among the experiment's runs
  that are not FINISHED; its children are found by `mlflow.parentRunId` and run name. A FINISHED child is
  skipped (its metrics are read back); any other is handed to `run_training`, which reuses that run and lets
  Ray Train resume from the last checkpoint.
- Concurrency: a config starts while another trains only when the cluster's free resources cover its workers
  (1 CPU each, or 1 GPU + 1 CPU each) plus a headroom of CPUs for Ray Data's tasks; otherwise configs run one
  after another (which is what a 2-core laptop gets).
- `train.init_from: "@NAME"` waits for run NAME and starts from the model export it logged (artifact `model/`).
"""

from __future__ import annotations

import dataclasses
import threading
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable

from mlflow.tracking import MlflowClient

from workflows.sweep_config import DEP_PREFIX
from workflows.train import RunPlan

DATA_HEADROOM_CPU = 2  # CPUs left free for Ray Data's read/split tasks beside the training workers
PARENT_TAG = "mlflow.parentRunId"


def find_parent(client: MlflowClient, experiment_id: str, sweep: str) -> str | None:
    """The latest not-FINISHED parent run of sweep `sweep`, or None."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.sweep = '{sweep}' and tags.role = 'sweep'",
        order_by=["attributes.start_time DESC"],
    )
    for run in runs:
        if run.info.status != "FINISHED":
            return run.info.run_id
    return None


def find_children(client: MlflowClient, experiment_id: str, parent_id: str) -> dict[str, Any]:
    """Run name -> the newest child Run of `parent_id` with that name."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'",
        order_by=["attributes.start_time ASC"],
    )
    return {run.info.run_name: run for run in runs}


def resources_needed(plan: RunPlan) -> dict[str, float]:
    t = plan.config.train
    need = {"CPU": float(t.num_workers + DATA_HEADROOM_CPU)}
    if t.use_gpu:
        need["GPU"] = float(t.num_workers)
    return need


def has_room(need: dict[str, float], total: dict[str, float], available: dict[str, float],
             reserved: dict[str, float]) -> bool:
    """Whether `need` fits in what is free: the smaller of Ray's own count and total minus what we reserved
    (Ray's count lags while a just-started trainer is placing its workers)."""
    for key, amount in need.items():
        free = min(available.get(key, 0.0), total.get(key, 0.0) - reserved.get(key, 0.0))
        if free < amount:
            return False
    return True


def export_location(client: MlflowClient, run_id: str, cache_dir: Path) -> str:
    """Where a finished child's model export (`model/` artifact) can be loaded from by the trainers."""
    uri = client.get_run(run_id).info.artifact_uri.rstrip("/") + "/model"
    if uri.startswith("file://"):
        return uri[len("file://"):]
    if uri.startswith(("s3://", "/")):
        return uri
    from mlflow.artifacts import download_artifacts  # mlflow-artifacts:/ (a tracking server's proxy), etc.

    target = cache_dir / run_id
    target.mkdir(parents=True, exist_ok=True)
    return download_artifacts(artifact_uri=uri, dst_path=str(target))


def with_init_from(plan: RunPlan, location: str) -> RunPlan:
    train = dataclasses.replace(plan.config.train, init_from=location)
    return dataclasses.replace(plan, config=dataclasses.replace(plan.config, train=train))


@dataclasses.dataclass
class Outcome:
    plan: RunPlan
    result: dict[str, Any] | None = None
    error: str | None = None


class SweepRunner:
    """Runs plans under one parent run; `train` is `run_training` (injectable for tests)."""

    def __init__(
        self,
        client: MlflowClient,
        experiment_id: str,
        parent_id: str,
        train: Callable[..., dict[str, Any]],
        train_kwargs: dict[str, Any],
        max_concurrent: int = 0,
        resources: Callable[[], tuple[dict[str, float], dict[str, float]]] | None = None,
        cache_dir: Path = Path("work/sweep_exports"),
        log: Callable[[str], None] = print,
    ):
        self.client = client
        self.experiment_id = experiment_id
        self.parent_id = parent_id
        self.train = train
        self.train_kwargs = train_kwargs
        self.max_concurrent = max_concurrent
        self.resources = resources or _ray_resources
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._log = log

    def log(self, message: str) -> None:
        with self._lock:
            self._log(message)

    def _skip_if_finished(self, plan: RunPlan) -> dict[str, Any] | None:
        child = find_children(self.client, self.experiment_id, self.parent_id).get(plan.config.name)
        if child is None or child.info.status != "FINISHED":
            return None
        return {"run_id": child.info.run_id, "metrics": dict(child.data.metrics),
                "wall_time_s": child.data.metrics.get("wall_time_s", 0.0), "skipped": True}

    def _run_one(self, plan: RunPlan) -> Outcome:
        name = plan.config.name
        try:
            result = self._skip_if_finished(plan)
            if result is not None:
                self.log(f"[{name}] already finished in run {result['run_id']}: skipped")
                return Outcome(plan, result)
            self.log(f"[{name}] E={plan.stats['E']} variant={plan.config.model.variant} training...")
            result = self.train(plan, parent_run_id=self.parent_id, **self.train_kwargs)
            self.log(f"[{name}] finished" + (" (skipped)" if result.get("skipped") else ""))
            return Outcome(plan, result)
        except Exception as err:  # one failed child must not stop the others
            lines = [line for line in str(err).strip().splitlines() if line.strip()] or [type(err).__name__]
            message = lines[-1][:160]
            self.log(f"[{name}] failed: {message}")
            if not isinstance(err, (ValueError, OSError)):
                self.log(traceback.format_exc(limit=3))
            return Outcome(plan, None, message)

    def run(self, plans: list[RunPlan]) -> list[Outcome]:
        """Runs every plan (dependencies first); outcomes come back in the order of `plans`."""
        outcomes: dict[str, Outcome] = {}
        pending = list(plans)
        running: dict[Future, RunPlan] = {}
        reserved: dict[str, float] = {}
        workers = max(1, self.max_concurrent or len(plans))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep-child") as pool:
            while pending or running:
                started = False
                for plan in list(pending):
                    dep = plan.config.train.init_from
                    dep = dep[len(DEP_PREFIX):] if dep.startswith(DEP_PREFIX) else None
                    if dep is not None and dep not in outcomes:
                        continue  # waits for its stage-1 run
                    if dep is not None and outcomes[dep].result is None:
                        pending.remove(plan)
                        outcomes[plan.config.name] = Outcome(plan, None, f"its init_from run '{dep}' failed")
                        self.log(f"[{plan.config.name}] failed: {outcomes[plan.config.name].error}")
                        continue
                    if running and not self._room(plan, reserved, len(running)):
                        break  # keep the file's order: wait for a running config to finish
                    if dep is not None:
                        try:
                            plan = with_init_from(plan, export_location(
                                self.client, outcomes[dep].result["run_id"], self.cache_dir))
                        except Exception as err:  # noqa: BLE001 - recorded as this child's failure
                            pending.remove(next(p for p in pending if p.config.name == plan.config.name))
                            outcomes[plan.config.name] = Outcome(plan, None, f"no export of '{dep}': {err}")
                            continue
                    pending = [p for p in pending if p.config.name != plan.config.name]
                    need = resources_needed(plan)
                    for key, amount in need.items():
                        reserved[key] = reserved.get(key, 0.0) + amount
                    running[pool.submit(self._run_one, plan)] = plan
                    started = True
                if not running:
                    if pending and not started:  # only blocked dependencies remain: cannot happen (validated)
                        for plan in pending:
                            outcomes[plan.config.name] = Outcome(plan, None, "dependency never ran")
                        pending = []
                    continue
                done, _ = wait(list(running), return_when=FIRST_COMPLETED, timeout=None if not started else 1.0)
                for future in done:
                    plan = running.pop(future)
                    for key, amount in resources_needed(plan).items():
                        reserved[key] -= amount
                    outcome = future.result()
                    outcomes[plan.config.name] = outcome
        return [outcomes[p.config.name] for p in plans]

    def _room(self, plan: RunPlan, reserved: dict[str, float], n_running: int) -> bool:
        if self.max_concurrent and n_running >= self.max_concurrent:
            return False
        total, available = self.resources()
        return has_room(resources_needed(plan), total, available, reserved)


def _ray_resources() -> tuple[dict[str, float], dict[str, float]]:
    import ray

    return ray.cluster_resources(), ray.available_resources()
