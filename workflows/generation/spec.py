"""Generator training as a kind of run for the engine (workflows/runs): a DiT on a tokenizer's latents under
DDP, then samples decoded by the tokenizer and scored, in a child run of the tokenizer's run. What differs from
other kinds lives here and in worker.py (the state on each worker); the rest is the engine's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ray

from workflows.config import GenerationConfig
from workflows.generation.ingest import generation_datasets, train_classes
from workflows.generation.plan import GenerationPlan
from workflows.generation.worker import GeneratorState
from workflows.runs import driver
from workflows.runs.room import check_room
from workflows.runs.spec import RunSpec, RunState, Scaling, Schedule, WorkerContext
from workflows.tracking import ROLE_TAG, RunResult

GENERATOR_ROLE = "generator"  # the `role` tag of generator runs (a sweep's are "sweep", its tokenizers' "config")
RESULT_METRICS = (("gen_swd", "SWD"), ("gen_fid", "gFID"), ("gen_fvd", "gFVD"))  # (metric, label), in that order
ROOM_HINT = "lower num_workers or add nodes"


@dataclass(frozen=True)
class GeneratorSpec(RunSpec):
    plan: GenerationPlan
    tokenizer: dict[str, Any]  # {"files": ObjectRef of {file name: bytes}}: in a dict, so Ray passes it through
    classes: tuple[int, ...]  # the classes the train latents hold (sampling cycles through them); () unconditional

    kind = "dit"

    @property
    def scaling(self) -> Scaling:
        c = self.plan.config
        return Scaling(c.num_workers, c.use_gpu, "PACK", c.max_failures, c.keep_checkpoints)

    @property
    def schedule(self) -> Schedule:
        c = self.plan.config
        return Schedule(steps=c.steps, global_batch_size=c.global_batch_size, micro_batch_size=c.micro_batch_size,
                        batches_per_step=1, shuffle_buffer=c.shuffle_buffer, seed=c.seed, log_every=c.log_every,
                        checkpoint_every=c.checkpoint_every, threads_per_worker=c.threads_per_worker)  # fmt: skip

    @property
    def train_streams(self) -> bool:
        return self.plan.train_streams

    @property
    def gmacs(self) -> float:
        return self.plan.dit_stats.gmacs

    def who(self) -> str:
        return f"generator '{self.name}'"

    def room_hint(self, resource: str, amount: float) -> str:
        return ROOM_HINT

    def params(self) -> dict[str, Any]:
        return self.plan.params()

    def result_line(self, metrics: dict[str, float]) -> str:
        return ", ".join(f"{label} {metrics[key]:.4g}" for key, label in RESULT_METRICS if key in metrics)

    def datasets(self) -> dict[str, Any]:
        return generation_datasets(self.plan)

    def start(self, context: WorkerContext) -> RunState:
        return GeneratorState(self.plan, self.tokenizer, self.classes, context)


def check_workers_fit(config: GenerationConfig, cluster: dict[str, float], who: str, streams: bool = False) -> None:
    """The room check for a generator config whose latents do not exist yet (a sweep's probe, checked before the
    sweep trains anything): `streams` says whether Ray Data's read tasks need a CPU too."""
    check_room(who, f"{config.num_workers} workers", config.num_workers, config.use_gpu, streams, cluster,
               lambda resource, amount: ROOM_HINT)


def generator_spec(plan: GenerationPlan, tokenizer_files: dict[str, bytes]) -> GeneratorSpec:
    """The spec of a planned generator: the tokenizer's files go to the object store once, for every worker, and
    the train classes are read here (two small columns per shard)."""
    return GeneratorSpec(plan, {"files": ray.put(tokenizer_files)}, train_classes(plan) if plan.conditional else ())


def run_generator(
    plan: GenerationPlan,
    tokenizer_files: dict[str, bytes],
    tracking_uri: str,
    experiment_id: str,
    tags: dict[str, str] | None = None,
    storage: str | None = None,
    verbose: bool = False,
) -> RunResult:
    """Trains, samples and scores one generator in one MLflow run (under `plan.parent_run_id`).

    `experiment_id` must be the parent's experiment when there is a parent (plan.experiment_id). See
    `workflows.runs.driver.run` for resuming, storage and the room check.
    """
    return driver.run(generator_spec(plan, tokenizer_files), tracking_uri, experiment_id, plan.parent_run_id,
                      {**(tags or {}), ROLE_TAG: GENERATOR_ROLE}, storage, verbose)  # fmt: skip
