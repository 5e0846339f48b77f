"""The contract between the run engine and a kind of run.

A `RunSpec` lives on the driver and travels to every worker (it must pickle): it says what the run needs
(`scaling`, `schedule`, whether its train split streams), what it records (`params`, `result_metrics`) and
reads its datasets. On each worker, `start` builds a `RunState`: the model and optimiser of that rank, one
optimiser step at a time, its own part of a checkpoint, and the end of the run (evaluation and export).
Everything else (Ray Train, MLflow, resume, seeds, progress, checkpoint plumbing) is the engine's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator

import torch

from workflows.tracking import RunLogger


@dataclass(frozen=True)
class Scaling:
    """The Ray Train side of a run: workers, their accelerator and placement, failures and checkpoints kept."""

    num_workers: int
    use_gpu: bool
    placement: str  # "PACK" or "SPREAD"
    max_failures: int
    keep_checkpoints: int


@dataclass(frozen=True)
class Schedule:
    """The step loop the engine drives on every worker."""

    steps: int
    global_batch_size: int
    micro_batch_size: int  # rows of one batch drawn from a worker's shard of the train split
    batches_per_step: int  # micro-batches one step draws (gradient accumulation)
    shuffle_buffer: int  # rows in each worker's local shuffle buffer (0: none)
    seed: int
    log_every: int
    checkpoint_every: int  # 0: only the final checkpoint
    threads_per_worker: int  # torch intra-op threads; 0: cores / workers


def no_datasets(name: str) -> Any:
    """The datasets of a state built outside Ray Train (a benchmark's single step): there are none."""
    raise LookupError(f"no dataset '{name}': this state was built outside a Ray Train worker group")


@dataclass(frozen=True)
class WorkerContext:
    """Where a worker's state is built: its rank, the world size, its MLflow logger (rank 0 only), and
    `dataset(name)`, this worker's iterator over the run's dataset `name` (one of `RunSpec.datasets()`)."""

    rank: int
    world: int
    logger: RunLogger | None
    dataset: Callable[[str], Any] = no_datasets


# Called by `RunState.finish` on every rank: saves the final checkpoint (metrics reported with it) and, on
# rank 0, writes the export into it with the given function (None: no export).
SaveFinal = Callable[[dict[str, float], Callable[[Path], None] | None], None]


class RunState(ABC):
    """One rank's training state. `stream` is the run's own random generator, saved with every checkpoint."""

    stream: torch.Generator

    @abstractmethod
    def step(self, step: int, batches: Iterator[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """One optimiser step (drawing `batches_per_step` batches); its loss terms, "loss" among them, as
        tensors (the engine syncs them with the host on logging steps only)."""

    @abstractmethod
    def step_metrics(self, step: int) -> dict[str, float]:
        """What else a logging step records besides the loss terms and throughput (e.g. the lr)."""

    @abstractmethod
    def save(self, folder: Path, rank: int) -> None:
        """Writes this rank's part of a checkpoint into `folder` (called on every rank)."""

    @abstractmethod
    def load(self, folder: Path, rank: int) -> None:
        """Reads back what `save` wrote (called on every rank)."""

    @abstractmethod
    def finish(self, start_step: int, save_final: SaveFinal) -> None:
        """After the last step, on every rank: evaluate, call `save_final` once, log the results (rank 0).
        `start_step` is where this attempt began (the last step when it resumed from the final checkpoint)."""


class RunSpec(ABC):
    """A kind of run, as the driver and the workers see it: a planned run (`plan`, checked before any Ray or
    MLflow work, with the run's `name`) and what the engine asks of it."""

    plan: Any

    kind: str  # names the Ray Train run, `{kind}-{MLflow run id}`, so a re-run finds its checkpoints
    worker_noun: str = "workers"  # the room check's name for them, e.g. "2 training workers"

    @property
    def name(self) -> str:
        """The MLflow run name; a re-run with the same name (and parent) resumes."""
        return self.plan.name

    @property
    @abstractmethod
    def scaling(self) -> Scaling: ...

    @property
    @abstractmethod
    def schedule(self) -> Schedule: ...

    @property
    @abstractmethod
    def train_streams(self) -> bool:
        """Whether the train split streams beside the workers (its read tasks need a CPU) or is cached."""

    @property
    @abstractmethod
    def gmacs(self) -> float:
        """Forward GMACs of one sample, for model FLOPs utilisation."""

    @property
    def export_to(self) -> str:
        """Where the driver copies the final export (a folder or s3://); "" for nowhere."""
        return ""

    @abstractmethod
    def who(self) -> str:
        """The run as the room check names it, e.g. "run 'x'"."""

    @abstractmethod
    def room_hint(self, resource: str, amount: float) -> str:
        """How to make room when the cluster lacks `amount` of `resource`."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The run's MLflow params."""

    @abstractmethod
    def result_line(self, metrics: dict[str, float]) -> str:
        """The finished run's metrics as the end of its result line, e.g. "PSNR 25.1, SSIM 0.8"."""

    @abstractmethod
    def datasets(self) -> dict[str, Any]:
        """The run's Ray Datasets, read on the driver: "train" (split among the workers) and the rest whole."""

    def data_key(self) -> Hashable:
        """Runs of one worker group with equal keys read the same `datasets()`, which the group then reads once.
        By default no two runs share them."""
        return id(self)

    @abstractmethod
    def start(self, context: WorkerContext) -> RunState:
        """Builds this rank's state (after the engine seeded torch with `schedule.seed`, the same on every rank,
        so the initial weights agree)."""
