"""The function every Ray Train worker runs, for any kind of run: one or more runs in turn on the same worker
group (a sweep's configs that would otherwise each start their own), each with its seeds, its state, resume
from its latest checkpoint, the step loop with its logged metrics and periodic checkpoints, then its own finish.
Rank 0 alone talks to MLflow.
"""

from __future__ import annotations

import gc
import os
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Iterator

import ray.train
import ray.train.torch
import torch

from workflows.runs.checkpoints import Owner, latest_checkpoint, restore, save_and_report
from workflows.runs.hardware import gpu_peak_flops
from workflows.runs.ingest import endless_batches
from workflows.runs.rng import rank_seed, seed_rank
from workflows.runs.spec import RunSpec, WorkerContext
from workflows.runtime.background import in_background
from workflows.runtime.console import configure_console
from workflows.tracking import RunLogger, start_system_metrics


@dataclass(frozen=True)
class GroupedRun:
    """One run of a worker group: its spec, already planned, its MLflow run, and the names Ray Train knows its
    datasets by (runs with equal `RunSpec.data_key()` share them)."""

    spec: RunSpec
    run_id: str
    datasets: dict[str, str]  # the spec's name ("train", "val", ...) -> the trainer's


@dataclass(frozen=True)
class WorkerConfig:
    """What every Ray Train worker is handed: the runs to train in turn, where to log, and which fit this is
    (a restarted worker group skips the runs that this fit finished before its last checkpoint)."""

    runs: tuple[GroupedRun, ...]
    tracking_uri: str
    fit: str
    verbose: bool = False  # False: known third-party warnings are filtered in the workers too
    submitted_at: float = field(default_factory=time.time)  # wall clock when the driver built the group


# Where a run's wall time goes, logged by rank 0 in seconds at the last step. start: from the driver building the
# group (for a group's later runs: from the end of the run before) to this run's state being built (Ray Train's
# start, placement, process group; after a restart the lost attempt too);
# setup: the engine's state (DeepSpeed init), resume, the dataset split; steps: the step loop less checkpoints;
# finish: evaluation, export and the final checkpoint. The driver adds phase_shutdown_s, the rest of the wall.
PHASES = ("phase_start_s", "phase_setup_s", "phase_steps_s", "phase_checkpoints_s", "phase_finish_s")


class TimedBatches:
    """A batch iterator that adds up the seconds spent waiting for its batches (the data_wait_fraction), and
    whose first batch is asked for in a background thread as soon as it is made.

    Ray Data starts the split's execution on a worker's first request, which takes seconds; made before the
    engine is built, the iterator has that batch ready by the first step instead of the first step waiting.
    """

    def __init__(self, batches: Iterator[dict[str, torch.Tensor]]):
        self.batches, self.wait = batches, 0.0
        self.first: Future | None = in_background(lambda: next(batches), "first-batch")

    def skip(self, count: int) -> None:
        """Draws and drops `count` batches: a resumed run's data then continues where its checkpoint left it."""
        for _ in range(count):
            next(self)
        self.wait = 0.0

    def __iter__(self) -> "TimedBatches":
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        start = time.perf_counter()
        if self.first is not None:
            batch, self.first = self.first.result(), None
        else:
            batch = next(self.batches)
        self.wait += time.perf_counter() - start
        return batch


def train_loop_per_worker(worker: WorkerConfig) -> None:
    """Trains the group's runs in turn. Which run a checkpoint resumes: the one that wrote it; and when this fit
    wrote it (a restarted worker group), the runs before that one had finished and are skipped."""
    configure_console(worker.verbose)
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    checkpoint, saved = latest_checkpoint()
    owner = saved.get("run_id", worker.runs[0].run_id)  # a checkpoint without an owner is of a run of its own
    ids = [run.run_id for run in worker.runs]
    done = ids.index(owner) if saved.get("fit") == worker.fit and owner in ids else 0
    since = worker.submitted_at
    for run in worker.runs[done:]:
        train_run(run, worker, rank, world, checkpoint if run.run_id == owner else None, since)
        since = time.time()
        gc.collect()  # the run's engine and model, before the next builds its own


def train_run(run: GroupedRun, worker: WorkerConfig, rank: int, world: int, checkpoint: ray.train.Checkpoint | None,
              since: float) -> None:  # fmt: skip
    """One run on this worker: from `checkpoint` when it is the run's own, else from step 0. `since`: where its
    start phase began."""
    entered = time.time()
    spec, s = run.spec, run.spec.schedule
    torch.set_num_threads(s.threads_per_worker or max(1, (os.cpu_count() or 1) // world))

    def dataset(name: str):
        return ray.train.get_dataset_shard(run.datasets[name])

    logger = RunLogger(worker.tracking_uri, run.run_id) if rank == 0 else None
    batches = TimedBatches(endless_batches(dataset("train"), s.micro_batch_size, s.shuffle_buffer,
                                           seed=rank_seed(s.seed, rank)))  # fmt: skip
    torch.manual_seed(s.seed)  # the same initial weights on every rank
    state = spec.start(WorkerContext(rank, world, logger, dataset))
    seed_rank(s.seed, rank)  # then each rank its own torch, numpy and python streams
    start_step = restore(state, rank, checkpoint) if checkpoint is not None else 0
    batches.skip(start_step * s.batches_per_step)
    owner = Owner(run.run_id, worker.fit)

    logged_through = logger.last_step("train_loss") if logger else 0
    monitor = start_system_metrics(worker.tracking_uri, run.run_id, interval_s=5) if logger else None
    if logger is not None:
        logger.tags({"resumed_from_step": str(start_step)})  # 0: a fresh start
    peak_flops = gpu_peak_flops(ray.train.torch.get_device() if spec.scaling.use_gpu else torch.device("cpu"))

    loop_start = time.perf_counter()
    setup_s, checkpoints_s = time.time() - entered, 0.0
    window_start, window_steps = loop_start, 0
    for step in range(start_step + 1, s.steps + 1):
        terms = state.step(step, batches)
        window_steps += 1
        if logger is not None and (step % s.log_every == 0 or step == s.steps):
            elapsed = time.perf_counter() - window_start
            values = {f"train_{k}": float(v) for k, v in terms.items()}  # host sync on logging steps only
            values.update(state.step_metrics(step))
            values["samples_per_s"] = window_steps * s.global_batch_size / elapsed
            if peak_flops:  # forward + backward = 3 x forward; 2 FLOPs per multiply-accumulate
                values["mfu"] = values["samples_per_s"] * 6e9 * spec.gmacs / (peak_flops * world)
            values["data_wait_fraction"] = batches.wait / elapsed
            if step > logged_through:  # steps redone after a restart were logged by the lost attempt
                logger.metrics(values, step)
            batches.wait, window_start, window_steps = 0.0, time.perf_counter(), 0
        if s.checkpoint_every and step % s.checkpoint_every == 0 and step < s.steps:
            saving = time.perf_counter()
            save_and_report(state, step, {"step": step}, rank, owner)
            checkpoints_s += time.perf_counter() - saving
    steps_s = time.perf_counter() - loop_start - checkpoints_s

    def save_final(metrics: dict[str, float], export) -> None:
        save_and_report(state, s.steps, {"step": s.steps, **metrics}, rank, owner, export)

    finishing = time.perf_counter()
    state.finish(start_step, save_final)
    if logger is not None:
        phases = (entered - since, setup_s, steps_s, checkpoints_s, time.perf_counter() - finishing)
        logger.metrics(dict(zip(PHASES, phases)), s.steps)
        if monitor is not None:
            monitor.finish()
        logger.finish()
