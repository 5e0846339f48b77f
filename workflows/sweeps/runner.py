"""Running a sweep's configs: resume by name, concurrency when the cluster has room, failures isolated.

- Resume: the parent run is found by its tags (`sweep` = name, `role` = sweep) among the experiment's runs
  that are not FINISHED; its children are found by `mlflow.parentRunId` and run name. A FINISHED child is
  skipped (its metrics are read back); any other is handed to `run_training`, which reuses that run and lets
  Ray Train resume from the last checkpoint.
- Concurrency: a config starts while another trains only when the cluster's free resources cover its workers
  (1 CPU each, or 1 GPU + 1 CPU each) plus a headroom of CPUs for Ray Data's tasks; otherwise configs run one
  after another (which is what a 2-core laptop gets).
- One worker group: where no two configs can ever train together (the cluster holds one at a time, or
  `--max-concurrent 1`) and the sweep has neither `@NAME` dependencies nor a probe, consecutive configs with
  the same workers train in turn on one Ray Train worker group (`train_group`), which starts once for all of
  them. Its Ray Train run is named after the parent run and the group's place in the sweep, so a re-run resumes
  the config that was interrupted from its checkpoint. A config that fails stops its group: it is recorded as
  failed and the configs after it go on in a new worker group.
- `train.init_from: "@NAME"` waits for run NAME and starts from the model export it logged (artifact `model/`).
- `probe` (a sweep with a `generation:` block): after a config's training has finished (or was skipped as
  finished), its generation probe runs in the same slot, on the resources reserved for that config. A failed
  probe is recorded beside the tokenizer's result, which stands.
"""

from __future__ import annotations

import dataclasses
import threading
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable

from workflows.runtime.console import say
from workflows.runtime.paths import SWEEP_EXPORTS
from workflows.runs.driver import GroupResult
from workflows.sweeps.sweep_file import DEP_PREFIX
from workflows.tracking import MlflowClient, RunResult, find_run, finished_result, model_export_location
from workflows.training.plan import RunPlan
from workflows.training.spec import TokenizerSpec

DATA_HEADROOM_CPU = 2  # CPUs left free for Ray Data's read/split tasks beside the training workers


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


@dataclasses.dataclass
class Outcome:
    plan: RunPlan
    result: RunResult | None = None
    error: str | None = None
    generation: RunResult | None = None  # the generator run of the probe, when the sweep has one
    generation_error: str | None = None


def _one_line(err: Exception) -> str:
    """The last non-empty line of an error (Ray wraps the cause in lines of context), cut to 160 characters."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()] or [type(err).__name__]
    return lines[-1][:160]


def worker_groups(plans: list[RunPlan]) -> list[list[RunPlan]]:
    """The plans cut into runs of consecutive plans that share their workers (`Scaling`), in order."""
    groups: list[list[RunPlan]] = []
    for plan in plans:
        if groups and TokenizerSpec(groups[-1][-1]).scaling == TokenizerSpec(plan).scaling:
            groups[-1].append(plan)
        else:
            groups.append([plan])
    return groups


class SweepRunner:
    """Runs plans under one parent run; `train` is `run_training`, `train_group` (optional) `run_training_group`
    and `probe` the generation probe of a finished config, (plan, its result) -> the generator's result (all
    injectable for tests)."""

    def __init__(
        self,
        client: MlflowClient,
        experiment_id: str,
        parent_id: str,
        train: Callable[..., RunResult],
        train_kwargs: dict[str, Any],
        max_concurrent: int = 0,
        resources: Callable[[], tuple[dict[str, float], dict[str, float]]] | None = None,
        cache_dir: Path = SWEEP_EXPORTS,
        log: Callable[[str], None] = say,
        probe: Callable[[RunPlan, RunResult], RunResult] | None = None,
        train_group: Callable[..., GroupResult] | None = None,
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
        self.probe = probe
        self.train_group = train_group

    def log(self, message: str) -> None:
        with self._lock:
            self._log(message)

    def _skip_if_finished(self, plan: RunPlan) -> RunResult | None:
        child = find_run(self.client, self.experiment_id, plan.config.name, self.parent_id)
        return finished_result(child) if child is not None else None

    def _run_one(self, plan: RunPlan) -> Outcome:
        outcome = self._train_one(plan)
        if self.probe is None or outcome.result is None:
            return outcome
        try:
            outcome.generation = self.probe(plan, outcome.result)
        except Exception as err:  # the tokenizer's result stands without its probe
            outcome.generation_error = _one_line(err)
            self.log(f"[{plan.config.name}] generation probe failed: {outcome.generation_error}")
            if not isinstance(err, (ValueError, OSError)):
                self.log(traceback.format_exc(limit=3))
        return outcome

    def _train_one(self, plan: RunPlan) -> Outcome:
        name = plan.config.name
        try:
            result = self._skip_if_finished(plan)
            if result is not None:
                self.log(f"[{name}] already finished in run {result.run_id}: skipped")
                return Outcome(plan, result)
            self.log(f"[{name}] training {plan.config.model.variant}, E = {plan.stats.E}, "
                     f"{plan.config.train.steps} steps")
            return Outcome(plan, self.train(plan, parent_run_id=self.parent_id, **self.train_kwargs))
        except Exception as err:  # one failed child must not stop the others
            message = _one_line(err)
            self.log(f"[{name}] failed: {message}")
            if not isinstance(err, (ValueError, OSError)):
                self.log(traceback.format_exc(limit=3))
            return Outcome(plan, None, message)

    def run(self, plans: list[RunPlan]) -> list[Outcome]:
        """Runs every plan (dependencies first); outcomes come back in the order of `plans`."""
        if self.train_group is not None and self._one_at_a_time(plans):
            return self._run_in_groups(plans)
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
                            plan = plan.with_init_from(model_export_location(
                                self.client, outcomes[dep].result.run_id, self.cache_dir))
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

    def _one_at_a_time(self, plans: list[RunPlan]) -> bool:
        """Whether the configs train one after another with nothing between them: no probe and no `@NAME`
        dependency, and either `--max-concurrent 1` or no config that the cluster could hold twice (then no
        two can train together)."""
        if self.probe is not None or any(p.config.train.init_from.startswith(DEP_PREFIX) for p in plans):
            return False
        if self.max_concurrent == 1:
            return True
        total, _ = self.resources()
        return not any(has_room({k: 2 * v for k, v in resources_needed(p).items()}, total, total, {})
                       for p in plans)  # fmt: skip

    def _run_in_groups(self, plans: list[RunPlan]) -> list[Outcome]:
        outcomes: dict[str, Outcome] = {}
        for index, group in enumerate(worker_groups(plans)):
            todo = []
            for plan in group:
                result = self._skip_if_finished(plan)
                if result is None:
                    todo.append(plan)
                    continue
                self.log(f"[{plan.config.name}] already finished in run {result.run_id}: skipped")
                outcomes[plan.config.name] = Outcome(plan, result)
            name = f"{TokenizerSpec.kind}-{self.parent_id}-group{index}"
            while todo:
                self.log(f"{len(todo)} config(s) in turn on one worker group (Ray Train run {name}): "
                         + ", ".join(f"{p.config.name} ({p.config.model.variant}, E = {p.stats.E})" for p in todo))
                todo = self._train_group(todo, name, outcomes)
        return [outcomes[p.config.name] for p in plans]

    def _train_group(self, todo: list[RunPlan], name: str, outcomes: dict[str, Outcome]) -> list[RunPlan]:
        """Trains `todo` on one worker group and records their outcomes; returns the plans left to train (those
        after one that failed)."""
        try:
            group = self.train_group(todo, parent_run_id=self.parent_id, name=name, **self.train_kwargs)
        except Exception as err:  # nothing started (e.g. the cluster cannot hold them): each of them failed
            message = _one_line(err)
            for plan in todo:
                self.log(f"[{plan.config.name}] failed: {message}")
                outcomes[plan.config.name] = Outcome(plan, None, message)
            return []
        for plan, result in zip(todo, group.results):
            if result is not None:
                outcomes[plan.config.name] = Outcome(plan, result)
        if group.error is None:
            return []
        failed, message = todo[group.failed], _one_line(group.error)
        self.log(f"[{failed.config.name}] failed: {message}")
        if not isinstance(group.error, (ValueError, OSError)):
            self.log("".join(traceback.format_exception(group.error, limit=3)))
        outcomes[failed.config.name] = Outcome(failed, None, message)
        return todo[group.failed + 1:]

    def _room(self, plan: RunPlan, reserved: dict[str, float], n_running: int) -> bool:
        if self.max_concurrent and n_running >= self.max_concurrent:
            return False
        total, available = self.resources()
        return has_room(resources_needed(plan), total, available, reserved)


def _ray_resources() -> tuple[dict[str, float], dict[str, float]]:
    import ray

    return ray.cluster_resources(), ray.available_resources()
