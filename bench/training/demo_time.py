"""`make demo` from a fresh clone, timed beside the floor of its training work on the same cores.

    .venv/bin/python bench/training/demo_time.py [--probe-steps 25] [--demo-timeout 3600]

The demo's goal is 10 minutes after installation on the 2-core CI-class machine. Its time alone does not say
whether a machine can meet that goal: the demo took 1231 s and, hours later, 1703 s on the same kind of machine,
with the same losses digit for digit (docs/results.md), and on a CPU without native bf16 it trains in fp32. So
this measures, in one run:

1. the floor: for each config of the demo's study (workflows/configs/e_sweep_tiny.yaml, read by the sweep's own
   loader), the plain PyTorch loop of bench/training/train_step.py (same model, global batch, optimiser and the
   precision 'auto' picks on this CPU; one process on all cores, the batch in memory), `--probe-steps` steps, the
   median step times the config's `train.steps`, summed over the configs: the study's training with no Ray,
   DeepSpeed, data pipeline, start-up, evaluation or export;
2. the demo: HEAD cloned into a temporary folder (uncommitted changes are not in it: the JSON's `demo_commit`),
   its `.venv` a link to this one, `python -m workflows.demo` run there with the environment `make demo` sets,
   timed from outside; the `phase_*_s` its runs logged to its MLflow store, summed over the configs;
3. the floor again: the speed of a shared machine drifts over half an hour.

Prints one JSON object: the demo's seconds (timed here, and as the demo printed them), its phases, both floors,
demo / floor and steps / floor (what the trainer makes of the study's training), the fixed cost (the demo less
its steps) and the goal: whether the demo met it and whether the floor alone fits in it (where it does not, no
change to the orchestration can meet the goal on this machine).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DS_ACCELERATOR", "cpu")

import ray  # noqa: E402

from bench.harness import environment  # noqa: E402
from bench.training.train_step import plain_loop  # noqa: E402
from data_prep.pipeline import run as prepare_shards  # noqa: E402
from data_prep.ray_session import connect_ray  # noqa: E402
from data_prep.sample_corpus import build_sample_corpus  # noqa: E402
from workflows.config import TrainConfig  # noqa: E402
from workflows.demo import E_SWEEP  # noqa: E402
from workflows.runs.worker import PHASES  # noqa: E402
from workflows.runtime.precision import resolve_precision  # noqa: E402
from workflows.sweeps.sweep_file import load_sweep  # noqa: E402
from workflows.tracking import prepare_tracking, run_metrics, tracking_client  # noqa: E402

GOAL_S = 600
# What `make demo` exports besides the venv (Makefile): the demo is run as make runs it.
MAKE_ENV = {"DS_ACCELERATOR": "cpu", "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
            "TORCH_EXTENSIONS_DIR": str(REPO / ".venv" / "torch_extensions")}  # fmt: skip
DEMO_SECONDS = re.compile(r"demo finished in (\d+) s")


def study_configs(shards: Path) -> list[TrainConfig]:
    """The demo study's configs on `shards`, at the precision 'auto' resolves to on this machine's CPU."""
    configs = load_sweep(E_SWEEP, {"data": {"shards": str(shards)}}).configs
    return [dataclasses.replace(c, train=dataclasses.replace(c.train, precision=resolve_precision(
        c.train.precision, use_gpu=False))) for c in configs]  # fmt: skip


def floor(configs: list[TrainConfig], shards: Path, probe_steps: int) -> dict:
    """Each config's plain-loop step, and the study's training at that pace: sum of steps x median step."""
    per_config = {}
    for config in configs:
        step_s = plain_loop(config, shards, probe_steps)["step_s"]
        per_config[config.name] = {"step_s": round(step_s, 4), "steps": config.train.steps,
                                   "seconds": round(step_s * config.train.steps, 1)}  # fmt: skip
        print(f"# floor {config.name}: {step_s:.4f} s per step", file=sys.stderr, flush=True)
    return {"seconds": round(sum(c["seconds"] for c in per_config.values()), 1), "configs": per_config}


def run_demo(clone: Path, timeout_s: int) -> dict:
    """`python -m workflows.demo` in `clone`, timed; its output goes to clone/demo.log."""
    env = {**os.environ, **MAKE_ENV}
    env.pop("RAY_ADDRESS", None)  # the demo's own local Ray, as on a user's machine
    log = clone / "demo.log"
    start = time.perf_counter()
    with open(log, "w") as out:
        # A session of its own, so that a demo past the timeout is stopped with its local Ray's processes,
        # which would otherwise go on using the cores the second floor is measured on.
        demo = subprocess.Popen([str(REPO / ".venv" / "bin" / "python"), "-m", "workflows.demo"], cwd=clone,
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = demo.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGTERM)
            demo.wait()
            code = None
    wall = time.perf_counter() - start
    lines = log.read_text().splitlines()
    printed = next((m for m in map(DEMO_SECONDS.search, lines) if m), None)
    return {"exit_code": code, "timed_out": code is None, "wall_s": round(wall, 1),
            "printed_s": int(printed.group(1)) if printed else None,
            # Each config's closing line (its time, PSNR and SSIM), to compare runs of the same code.
            "finished_lines": [line for line in lines if "] finished in " in line],
            "output_tail": lines[-3:]}  # fmt: skip


def demo_phases(clone: Path, experiment: str) -> dict:
    """The `phase_*_s` of every training run in the clone's MLflow store, per run and summed."""
    uri, experiment_id = prepare_tracking(f"sqlite:///{clone / 'mlflow.db'}", experiment)
    client = tracking_client(uri)
    keys = (*PHASES, "phase_shutdown_s")
    runs = {}
    for run in client.search_runs([experiment_id]):
        metrics = run_metrics(client, run.info.run_id)
        if "phase_steps_s" in metrics:
            runs[run.info.run_name] = {key: round(metrics.get(key, 0.0), 1) for key in keys}
    totals = {key: round(sum(r[key] for r in runs.values()), 1) for key in keys}
    return {"configs": len(runs), "totals": totals, "per_config": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probe-steps", type=int, default=25,
                        help="plain-loop steps per config for the floor, the first 5 untimed (default 25)")
    parser.add_argument("--demo-timeout", type=int, default=3600, help="seconds before the demo is stopped")
    args = parser.parse_args(argv)
    if args.probe_steps < 10:
        parser.error(f"--probe-steps {args.probe_steps}: at least 10 (5 warm-up steps are dropped)")

    report = {"benchmark": "make demo from a fresh clone against the floor of its training work",
              **environment(["vitok", "workflows", "data_prep", "bench/training/demo_time.py"])}  # fmt: skip
    with contextlib.redirect_stdout(sys.stderr), tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_sample_corpus(str(tmp / "corpus"))
        connect_ray()
        prepare_shards(str(tmp / "corpus"), str(tmp / "shards"), frames=8, size=64, fps=8)  # the demo's shards
        configs = study_configs(tmp / "shards")
        report["precision"] = configs[0].train.precision
        report["floor_before"] = floor(configs, tmp / "shards", args.probe_steps)
        ray.shutdown()  # the demo starts its own local Ray; this one would share the cores with it

        clone = tmp / "clone"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        (clone / ".venv").symlink_to(REPO / ".venv")
        report["demo_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True,
                                               text=True).stdout.strip()  # fmt: skip
        report["load_average_before_demo"] = os.getloadavg()
        report["demo"] = run_demo(clone, args.demo_timeout)
        report["load_average_after_demo"] = os.getloadavg()
        report["demo"]["phases"] = demo_phases(clone, load_sweep(E_SWEEP).experiment)

        connect_ray()
        report["floor_after"] = floor(configs, tmp / "shards", args.probe_steps)
        ray.shutdown()

    demo_s, steps_s = report["demo"]["wall_s"], report["demo"]["phases"]["totals"]["phase_steps_s"]
    floor_s = statistics.mean([report["floor_before"]["seconds"], report["floor_after"]["seconds"]])
    report["summary"] = {
        "demo_s": demo_s,
        "floor_s_mean": round(floor_s, 1),
        "demo_over_floor": round(demo_s / floor_s, 2),
        "steps_over_floor": round(steps_s / floor_s, 2),
        "fixed_cost_s": round(demo_s - steps_s, 1),
        "goal_s": GOAL_S,
        "met": report["demo"]["exit_code"] == 0 and demo_s <= GOAL_S,
        "floor_fits_goal": floor_s <= GOAL_S,
    }
    print(json.dumps(report, indent=1))
    return 0 if report["demo"]["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
