"""Where a short training run's wall time goes, and what Ray Train's controller poll interval costs there.

    .venv/bin/python bench/run_overhead.py [--variant N-N/8] [--steps 20] [--workers 2] [--rounds 3] [--poll 2.0 0.5]

Every config of a sweep is its own Ray Train run, so the fixed cost of a run (Ray Train's controller and worker
start, DeepSpeed's engine, the dataset split, the teardown) is paid once per config. This trains the same short
config once per poll interval (`RAY_TRAIN_HEALTH_CHECK_INTERVAL_S`; Ray's default is 2 s) in each round, in
alternating order (ABBA...), and reports each run's phases as its worker logged them (`phase_*_s`, from MLflow)
and the medians per interval: a run ends only at the controller's next poll after its workers return, so the
shutdown depends on the interval; the start, setup and steps should not.
Prints one JSON object; the ratios compare intervals measured in the same run.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DS_ACCELERATOR", "cpu")

import ray  # noqa: E402

from bench.harness import environment  # noqa: E402
from data_prep.pipeline import run as prepare_shards  # noqa: E402
from data_prep.ray_session import connect_ray  # noqa: E402
from data_prep.sample_corpus import build_sample_corpus  # noqa: E402
from workflows.config import TrainConfig  # noqa: E402
from workflows.runs.driver import CONTROLLER_POLL_ENV  # noqa: E402
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="N-N/8")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--poll", type=float, nargs="+", default=[2.0, 0.5],
                        help="controller poll intervals in seconds, the first the baseline (default: %(default)s)")
    args = parser.parse_args(argv)

    # Everything but the JSON goes to stderr (progress lines, Ray's log monitor).
    with contextlib.redirect_stdout(sys.stderr), tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_sample_corpus(str(tmp / "corpus"))
        connect_ray()
        prepare_shards(str(tmp / "corpus"), str(tmp / "shards"), size=64)
        tracking = prepare_tracking(f"sqlite:///{tmp / 'runs.db'}", "bench-run-overhead")  # (uri, experiment id)
        load_before = os.getloadavg()
        runs: dict[float, list[dict[str, float]]] = {poll: [] for poll in args.poll}
        for r in range(args.rounds):
            for poll in (args.poll if r % 2 == 0 else list(reversed(args.poll))):
                os.environ[CONTROLLER_POLL_ENV] = str(poll)  # read from the driver's environment at each fit
                runs[poll].append(one_run(args, tmp / "shards", tracking, tmp / "ray", f"poll{poll}-round{r}"))
        load_after = os.getloadavg()
        ray.shutdown()

    medians = {poll: {key: round(statistics.median(run[key] for run in rs), 3) for key in REPORTED}
               for poll, rs in runs.items()}  # fmt: skip
    base = medians[args.poll[0]]
    out = {
        **environment(["vitok", "workflows", "data_prep", "bench/run_overhead.py"]),
        "ray": ray.__version__,
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "settings": {"variant": args.variant, "steps": args.steps, "workers": args.workers, "zero_stage": 2,
                     "rounds": args.rounds},
        "runs": {str(poll): rs for poll, rs in runs.items()},
        "medians": {str(poll): m for poll, m in medians.items()},
        "wall_vs_baseline": {str(poll): round(m["wall_time_s"] / base["wall_time_s"], 3)
                             for poll, m in medians.items()},  # fmt: skip
        "not_steps_s": {str(poll): round(m["wall_time_s"] - m["phase_steps_s"], 2) for poll, m in medians.items()},
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
