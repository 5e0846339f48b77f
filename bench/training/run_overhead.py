"""Where a short training run's wall time and CPU go, and what a Ray Train setting changes there.

    .venv/bin/python bench/training/run_overhead.py [--variant N-N/8] [--steps 20] [--workers 2] [--rounds 3]
        [--setting default RAY_TRAIN_HEALTH_CHECK_INTERVAL_S=2.0 ...]

Every config of a sweep is its own Ray Train run, so the fixed cost of a run (Ray Train's controller and worker
start, DeepSpeed's engine, the dataset split, the teardown) is paid once per config. This trains the same short
config once per setting in each round, in alternating order (ABBA...), and reports each run's phases as its
worker logged them (`phase_*_s`, from MLflow), the CPU seconds of each kind of process meanwhile (the driver,
each Ray actor by its class, Ray's own processes: bench.harness.TreeCpu) and the medians per setting.
A setting is `default` (the project's own environment) or `NAME=VALUE[,NAME=VALUE...]`, environment variables
set in the driver for that run only: Ray Train passes its `RAY_TRAIN_*` variables on to its controller and
workers at each fit. The first setting is the baseline. For example, the controller's poll interval
(`RAY_TRAIN_HEALTH_CHECK_INTERVAL_S`; Ray's default is 2 s, the project's 0.5 s: a run ends only at the poll
after its workers return) or the preemption watcher (`RAY_TRAIN_ENABLE_PREEMPTION_WATCHER=1`; off on a local
Ray, data_prep.ray_session). Prints one JSON object; the ratios compare settings measured in the same run.
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

from bench.harness import TreeCpu, environment  # noqa: E402
from data_prep.pipeline import run as prepare_shards  # noqa: E402
from data_prep.ray_session import connect_ray  # noqa: E402
from data_prep.sample_corpus import build_sample_corpus  # noqa: E402
from workflows.config import TrainConfig  # noqa: E402
from workflows.runs.worker import PHASES  # noqa: E402
from workflows.tracking import prepare_tracking  # noqa: E402
from workflows.training.plan import plan_run  # noqa: E402
from workflows.training.spec import run_training  # noqa: E402

REPORTED = ("wall_time_s", *PHASES, "phase_shutdown_s")


def one_run(args, shards: Path, tracking: tuple[str, str], storage: Path, name: str) -> dict[str, float]:
    config = TrainConfig.from_dict({
        "name": name,  # distinct per run: a finished run of the same name would be returned, not re-run
        "model": {"variant": args.variant, "channels": 16},
        "data": {"shards": str(shards)},
        "optim": {"base_lr": 0.016, "warmup_steps": 5},
        "train": {"steps": args.steps, "micro_batch_size": 8, "num_workers": args.workers, "zero_stage": 2,
                  "log_every": args.steps, "checkpoint_every": 0, "eval_samples": 8},
    })
    result = run_training(plan_run(config), *tracking, storage=str(storage))
    return {key: round(result.metrics[key], 3) for key in REPORTED}


def parse_setting(parser: argparse.ArgumentParser, setting: str) -> dict[str, str]:
    if setting == "default":
        return {}
    pairs = [pair.partition("=") for pair in setting.split(",")]
    if any(not name or not sep for name, sep, _ in pairs):
        parser.error(f"--setting {setting!r}: expected 'default' or NAME=VALUE[,NAME=VALUE...]")
    return {name: value for name, _, value in pairs}


@contextlib.contextmanager
def environment_set(variables: dict[str, str]):
    """The driver's environment with `variables` set, restored afterwards (Ray Train reads it at each fit)."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def median_cpu(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median CPU seconds of each kind of process over runs (0 in a run where it did not appear)."""
    kinds = {kind for run in runs for kind in run}
    medians = {kind: round(statistics.median(run.get(kind, 0.0) for run in runs), 2) for kind in kinds}
    return {"total": round(statistics.median(sum(run.values()) for run in runs), 2),
            **dict(sorted(medians.items(), key=lambda kv: -kv[1]))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="N-N/8")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--setting", nargs="+", default=["default", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S=2.0"],
                        help="'default' or NAME=VALUE[,NAME=VALUE...] per setting, the first the baseline "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    settings = {setting: parse_setting(parser, setting) for setting in args.setting}

    # Everything but the JSON goes to stderr (progress lines, Ray's log monitor).
    with contextlib.redirect_stdout(sys.stderr), tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_sample_corpus(str(tmp / "corpus"))
        connect_ray()
        prepare_shards(str(tmp / "corpus"), str(tmp / "shards"), size=64)
        tracking = prepare_tracking(f"sqlite:///{tmp / 'runs.db'}", "bench-run-overhead")  # (uri, experiment id)
        load_before = os.getloadavg()
        runs: dict[str, list[dict]] = {setting: [] for setting in settings}
        for r in range(args.rounds):
            for setting in (args.setting if r % 2 == 0 else list(reversed(args.setting))):
                with environment_set(settings[setting]), TreeCpu() as cpu:
                    name = f"setting{args.setting.index(setting)}-round{r}"
                    run = one_run(args, tmp / "shards", tracking, tmp / "ray", name)
                runs[setting].append({**run, "cpu_s": cpu.by_kind()})
        load_after = os.getloadavg()
        ray.shutdown()

    medians = {setting: {key: round(statistics.median(run[key] for run in rs), 3) for key in REPORTED}
               for setting, rs in runs.items()}  # fmt: skip
    base = medians[args.setting[0]]
    out = {
        **environment(["vitok", "workflows", "data_prep", "bench/training/run_overhead.py", "bench/harness.py"]),
        "ray": ray.__version__,
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "settings": {"variant": args.variant, "steps": args.steps, "workers": args.workers, "zero_stage": 2,
                     "rounds": args.rounds, "compared": args.setting},
        "runs": runs,
        "medians": medians,
        "cpu_s_medians": {setting: median_cpu([run["cpu_s"] for run in rs]) for setting, rs in runs.items()},
        "wall_vs_baseline": {setting: round(m["wall_time_s"] / base["wall_time_s"], 3)
                             for setting, m in medians.items()},  # fmt: skip
        "not_steps_s": {setting: round(m["wall_time_s"] - m["phase_steps_s"], 2) for setting, m in medians.items()},
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
