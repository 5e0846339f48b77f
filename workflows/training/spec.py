"""Tokenizer training as a kind of run for the engine (workflows/runs): ViTok under DeepSpeed ZeRO on the
tubelet shards, one planned config (`RunPlan`) per run. What differs from other kinds lives here and in
worker.py (the state on each worker); the rest is the engine's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable

from workflows.runs import driver
from workflows.runs.driver import GroupResult
from workflows.runs.spec import RunSpec, RunState, Scaling, Schedule, WorkerContext
from workflows.tracking import RunResult
from workflows.training.ingest import train_is_cached, training_datasets
from workflows.training.plan import RunPlan
from workflows.training.worker import TokenizerState

# (metric, label) of the result line, in that order, for those the run recorded.
RESULT_METRICS = (("eval_psnr", "PSNR"), ("eval_ssim", "SSIM"), ("eval_lpips", "LPIPS"), ("eval_rfid", "rFID"),
                  ("eval_rfvd", "rFVD"))  # fmt: skip


@dataclass(frozen=True)
class TokenizerSpec(RunSpec):
    plan: RunPlan

    kind = "vitok"
    worker_noun = "training workers"

    @property
    def scaling(self) -> Scaling:
        t = self.plan.config.train
        return Scaling(t.num_workers, t.use_gpu, t.placement, t.max_failures, t.keep_checkpoints)

    @property
    def schedule(self) -> Schedule:
        config, t = self.plan.config, self.plan.config.train
        return Schedule(steps=t.steps, global_batch_size=t.global_batch_size, micro_batch_size=t.micro_batch_size,
                        batches_per_step=t.grad_accum, shuffle_buffer=config.data.shuffle_buffer, seed=t.seed,
                        log_every=t.log_every, checkpoint_every=t.checkpoint_every,
                        threads_per_worker=t.threads_per_worker)  # fmt: skip

    @property
    def sample_bytes(self) -> int:
        """Bytes of one uint8 tubelet."""
        return self.plan.frames * self.plan.resolution**2 * 3

    @property
    def train_streams(self) -> bool:
        return not train_is_cached(self.plan.config, self.plan.train_rows, self.sample_bytes)

    @property
    def gmacs(self) -> float:
        return self.plan.stats.gmacs

    @property
    def export_to(self) -> str:
        return self.plan.config.train.export_to

    def who(self) -> str:
        return f"run '{self.name}'"

    def room_hint(self, resource: str, amount: float) -> str:
        if resource != "CPU":
            return "add GPU nodes or lower train.num_workers"
        hint = f"start Ray with more (e.g. `ray start --head --num-cpus {int(amount)}`), lower train.num_workers"
        if self.train_streams:
            hint += ", or raise data.cache_max_bytes so the train split is read once before training"
        return hint

    def params(self) -> dict[str, Any]:
        return self.plan.params()

    def result_line(self, metrics: dict[str, float]) -> str:
        shown = [f"{label} {metrics[key]:.4g}" for key, label in RESULT_METRICS if key in metrics]
        return ", ".join(shown) or "no held-out split"

    def datasets(self) -> dict[str, Any]:
        return training_datasets(self.plan.config, self.plan.train_rows, self.plan.val_rows, not self.train_streams)

    def data_key(self) -> Hashable:
        """What `datasets()` reads: the configs of a sweep that train on the same shards the same number of
        samples share their splits."""
        config, t = self.plan.config, self.plan.config.train
        # The config dataclasses are mutable, so not hashable: the data section's repr stands for it.
        return (repr(config.data), self.plan.train_rows, self.plan.val_rows, self.train_streams, t.steps,
                t.global_batch_size, t.eval_samples)  # fmt: skip

    def start(self, context: WorkerContext) -> RunState:
        return TokenizerState(self.plan, context)


def run_training(plan: RunPlan, tracking_uri: str, experiment_id: str, **options: Any) -> RunResult:
    """Trains and evaluates one config in one MLflow run; `options` (parent_run_id, tags, storage, verbose) and
    resuming as `workflows.runs.driver.run`."""
    return driver.run(TokenizerSpec(plan), tracking_uri, experiment_id, **options)


def run_training_group(plans: list[RunPlan], tracking_uri: str, experiment_id: str, **options: Any) -> GroupResult:
    """Trains and evaluates `plans` in turn on one worker group, each in its own MLflow run; `options` (parent_run_id,
    tags, storage, verbose, name) as `workflows.runs.driver.run_group`."""
    return driver.run_group([TokenizerSpec(plan) for plan in plans], tracking_uri, experiment_id, **options)
