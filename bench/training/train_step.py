"""Training throughput of Ray Train + DeepSpeed, side by side in one run: bf16 against fp32, the trainer
against a plain PyTorch loop at the same precision, torch.compile on and off, 1 against 2 workers.

    .venv/bin/python bench/training/train_step.py [--variant S-S/16] [--steps 60] [--quick] [--defaults-only]
        [--rounds 1]

Prints one JSON object with, for each configuration, samples/s and step time:
- `plain_fp32`, `plain_bf16`: a single-process loop (same model, batch, optimiser, thread count); bf16 as
  PyTorch's autocast, the usual plain-PyTorch way to train in bf16;
- `trainer_fp32`, `trainer_bf16`, `trainer_bf16_compile`: the real trainer (`workflows.training.spec.
  run_training`, ZeRO-2, 1 worker) in each precision, from the samples/s it logged to MLflow (warm-up window
  dropped), with its data-wait fraction; `trainer_bf16_2_workers`: the same with 2 workers;
- `trainer_fp32_zero0`, `trainer_bf16_zero0`: the trainer with `train.zero_stage: 0` (1 worker: ZeRO has
  nothing to partition; in bf16 DeepSpeed then steps with its bf16 optimiser instead of ZeRO's flat
  partitions, whose per-step flattening and casts cost the most on CPU);
- the ratios and their goals: bf16 / fp32 trainer >= 1.8, trainer / plain loop (bf16) >= 0.85, data wait <= 5%
  (each for ZeRO-2 and for ZeRO-0).
- `trainer_default`, `trainer_default_ema`, `trainer_default_2_workers[_ema]`: the trainer as a user gets it
  (`precision` and `zero_stage` 'auto'), without and with `train.ema_decay`, against `plain_auto` (the plain
  loop at the precision 'auto' picks): trainer / plain >= 0.9 with one worker and with two (the goal is for
  the default at each world size), EMA on / off >= 0.95. `--defaults-only` runs
  just these (the bf16 cases are 15-30x slower than fp32 on a CPU that emulates bf16). `--rounds N` measures
  these N times, in alternating order (ABBA...), and reports each round's ratios and their median: run-to-run
  differences on a 2-core machine are as large as the goals' margins, so one round cannot decide them.
Absolute times are not comparable between runs on a shared machine; the ratios are measured in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DS_ACCELERATOR", "cpu")

import ray  # noqa: E402
import torch  # noqa: E402

from bench.harness import environment as harness_environment  # noqa: E402
from bench.training.plain_step import PlainStep  # noqa: E402
from data_prep.pipeline import run as prepare_shards  # noqa: E402
from data_prep.ray_session import connect_ray  # noqa: E402
from data_prep.reader import read_tubelets  # noqa: E402
from data_prep.sample_corpus import build_sample_corpus  # noqa: E402
from workflows.config import TrainConfig  # noqa: E402
from workflows.training.evaluation import pixels_to_model_input  # noqa: E402
from workflows.tracking import metric_history, prepare_tracking, tracking_client  # noqa: E402
from workflows.training.spec import run_training  # noqa: E402
from workflows.training.plan import plan_run  # noqa: E402
from workflows.runtime.precision import resolve_precision  # noqa: E402


def config_for(args, shards: Path, workers: int, precision: str, compile_: bool = False,
               zero_stage: int | str = 2, ema_decay: float = 0.0, round_: int = 0) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            # A distinct name per round: a finished run of the same name would be returned as it is, not re-run.
            "name": f"bench-{workers}w-{precision}-zero{zero_stage}" + ("-compile" if compile_ else "")
                    + ("-ema" if ema_decay else "") + (f"-round{round_}" if round_ else ""),
            "model": {"variant": args.variant, "channels": 16},
            "data": {"shards": str(shards)},
            "optim": {"base_lr": 0.016, "warmup_steps": 5},
            "train": {"steps": args.steps, "micro_batch_size": args.batch // workers, "num_workers": workers,
                      "log_every": args.steps // 6, "checkpoint_every": 0, "eval_samples": 8,
                      "precision": precision, "compile": compile_, "zero_stage": zero_stage,
                      "ema_decay": ema_decay},
        }
    )


def plain_loop(config: TrainConfig, shards: Path, steps: int) -> dict:
    """The baseline a user would write (bench/training/plain_step.py) with the default allocator and the batch held in
    memory. (The trainer's Ray workers start with data_prep.ray_session.ALLOCATOR_ENV, jemalloc, for the
    parameter-sized temporaries DeepSpeed's step makes in Ray Train's thread; this loop makes none of that size.)"""
    torch.set_num_threads(os.cpu_count() or 1)
    rows = read_tubelets(str(shards)).select_columns(["pixels"])
    batch = next(iter(rows.iter_torch_batches(batch_size=config.train.global_batch_size)))
    step_once = PlainStep(config, pixels_to_model_input(batch["pixels"]))
    times = [sum(step_once()) for _ in range(steps)]
    step = statistics.median(times[5:])
    return {"step_s": step, "samples_per_s": config.train.global_batch_size / step}


def trainer(config: TrainConfig, tracking: Path) -> dict:
    uri, experiment_id = prepare_tracking(f"sqlite:///{tracking}", "bench-train-step")
    result = run_training(plan_run(config), uri, experiment_id, storage=str(tracking.parent / "ray"))
    client = tracking_client(uri)
    rates = [value for _, value in metric_history(client, result.run_id, "samples_per_s")][1:]  # drop warm-up
    waits = [value for _, value in metric_history(client, result.run_id, "data_wait_fraction")][1:]
    rate = statistics.median(rates)
    return {
        "step_s": config.train.global_batch_size / rate,
        "samples_per_s": rate,
        "data_wait_fraction": statistics.median(waits),
        "wall_s_incl_startup": result.wall_time_s,
    }


def environment() -> dict:
    env = harness_environment(["vitok", "workflows", "bench/training/train_step.py"])
    return {**env, "torch": torch.__version__, "ray": ray.__version__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="S-S/16", help="a size whose step is matrix work (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=16, help="global batch size")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="18 steps of T-T/8: a smoke run of the benchmark")
    parser.add_argument("--defaults-only", action="store_true",
                        help="only the plain loop and the trainer at their defaults, 1 and 2 workers, EMA off and on")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure the defaults this many times, in alternating order (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.variant = 18, "T-T/8"

    # Everything but the JSON goes to stderr: the trainer's progress lines and the warnings Ray's log monitor
    # prints from a thread of its own at any time.
    with contextlib.redirect_stdout(sys.stderr), tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_sample_corpus(str(tmp / "corpus"))
        connect_ray()
        prepare_shards(str(tmp / "corpus"), str(tmp / "shards"), size=64)
        shards = tmp / "shards"
        db = tmp / "runs.db"
        load_before = os.getloadavg()
        # The defaults: precision and ZeRO stage 'auto' (what a user gets without setting them), EMA off and on.
        defaults = {
            "plain_auto": lambda r: plain_loop(config_for(args, shards, 1, "auto"), shards, args.steps),
            "trainer_default": lambda r: trainer(config_for(args, shards, 1, "auto", zero_stage="auto", round_=r), db),
            "trainer_default_ema": lambda r: trainer(
                config_for(args, shards, 1, "auto", zero_stage="auto", ema_decay=0.999, round_=r), db),
            "trainer_default_2_workers": lambda r: trainer(
                config_for(args, shards, 2, "auto", zero_stage="auto", round_=r), db),
            "trainer_default_2_workers_ema": lambda r: trainer(
                config_for(args, shards, 2, "auto", zero_stage="auto", ema_decay=0.999, round_=r), db),
        }
        rounds = []
        for r in range(args.rounds):
            order = list(defaults) if r % 2 == 0 else list(reversed(defaults))
            rounds.append({name: defaults[name](r) for name in order})
        figures = dict(rounds[0])
        if not args.defaults_only:
            figures |= {
                "plain_fp32": plain_loop(config_for(args, shards, 1, "fp32"), shards, args.steps),
                "plain_bf16": plain_loop(config_for(args, shards, 1, "bf16"), shards, args.steps),
                "trainer_fp32": trainer(config_for(args, shards, 1, "fp32"), db),
                "trainer_bf16": trainer(config_for(args, shards, 1, "bf16"), db),
                "trainer_fp32_zero0": trainer(config_for(args, shards, 1, "fp32", zero_stage=0), db),
                "trainer_bf16_zero0": trainer(config_for(args, shards, 1, "bf16", zero_stage=0), db),
                "trainer_bf16_compile": trainer(config_for(args, shards, 1, "bf16", compile_=True), db),
                "trainer_bf16_2_workers": trainer(config_for(args, shards, 2, "bf16"), db),
            }
        ray.shutdown()

    def default_ratios(rate: dict[str, float]) -> dict[str, float]:
        return {
            "ratio_trainer_default_vs_plain": rate["trainer_default"] / rate["plain_auto"],
            # Two workers on the machine's cores against the plain loop on the same cores (bench/training/zero_split.py
            # splits that step by phase).
            "ratio_trainer_default_2_workers_vs_plain": rate["trainer_default_2_workers"] / rate["plain_auto"],
            "ratio_ema_vs_no_ema": rate["trainer_default_ema"] / rate["trainer_default"],
            "ratio_ema_vs_no_ema_2_workers": rate["trainer_default_2_workers_ema"] / rate["trainer_default_2_workers"],
            "speedup_2_vs_1_workers_default": rate["trainer_default_2_workers"] / rate["trainer_default"],
        }

    per_round = [default_ratios({name: f["samples_per_s"] for name, f in r.items()}) for r in rounds]
    ratios = {name: statistics.median(r[name] for r in per_round) for name in per_round[0]}
    rate = {name: f["samples_per_s"] for name, f in figures.items()}
    if not args.defaults_only:
        ratios |= {
            "ratio_bf16_vs_fp32_trainer": rate["trainer_bf16"] / rate["trainer_fp32"],
            "ratio_trainer_vs_plain_bf16": rate["trainer_bf16"] / rate["plain_bf16"],
            "ratio_trainer_vs_plain_fp32": rate["trainer_fp32"] / rate["plain_fp32"],
            "ratio_bf16_vs_fp32_trainer_zero0": rate["trainer_bf16_zero0"] / rate["trainer_fp32_zero0"],
            "ratio_trainer_zero0_vs_plain_bf16": rate["trainer_bf16_zero0"] / rate["plain_bf16"],
            "ratio_trainer_zero0_vs_plain_fp32": rate["trainer_fp32_zero0"] / rate["plain_fp32"],
            "ratio_compile_vs_eager_bf16": rate["trainer_bf16_compile"] / rate["trainer_bf16"],
            "speedup_2_vs_1_workers_bf16": rate["trainer_bf16_2_workers"] / rate["trainer_bf16"],
        }
    report = {
        **environment(),
        "model": args.variant,
        "input": "1x64x64",
        "global_batch": args.batch,
        "steps": args.steps,
        "precision_auto_resolves_to": resolve_precision("auto", use_gpu=False),
        "load_average_before_after": [load_before, os.getloadavg()],
        **figures,
        **ratios,
        "rounds": [{**{name: f["samples_per_s"] for name, f in r.items()}, **q} for r, q in zip(rounds, per_round)],
        "goals": {"ratio_trainer_default_vs_plain": ">= 0.9", "ratio_trainer_default_2_workers_vs_plain": ">= 0.9",
                  "ratio_ema_vs_no_ema": ">= 0.95",
                  "ratio_bf16_vs_fp32_trainer": ">= 1.8 (CPUs with native bf16)",
                  "ratio_trainer_vs_plain_bf16": ">= 0.85", "data_wait_fraction": "<= 0.05"},
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
