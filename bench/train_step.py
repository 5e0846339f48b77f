"""Training-step overhead of Ray Train + DeepSpeed against a plain PyTorch loop, measured side by side.

    .venv/bin/python bench/train_step.py [--variant T-T/8] [--steps 120] [--quick]

Prints one JSON object:
- `plain`: a single-process loop (same model, batch, optimiser and thread count), median step time;
- `ray_deepspeed_1`: the real trainer (`workflows.training.driver.run_training`, ZeRO-2, 1 worker), its step time
  from the samples/s it logged to MLflow (warm-up window dropped) and its data-wait fraction;
- `ray_deepspeed_2`: the same with 2 workers (1 thread each), for 1 -> 2 worker throughput;
- the ratios and goals: trainer / plain step time <= 1.15, data wait <= 5%.
Absolute times are not comparable between runs on a shared machine; the ratios are measured in one run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DS_ACCELERATOR", "cpu")

import ray  # noqa: E402
import torch  # noqa: E402

from data_prep.pipeline import run as prepare_shards  # noqa: E402
from data_prep.reader import read_tubelets  # noqa: E402
from data_prep.sample_corpus import build_sample_corpus  # noqa: E402
from vitok import ViTok  # noqa: E402
from vitok.losses import stage1_loss  # noqa: E402
from workflows.config import TrainConfig  # noqa: E402
from workflows.training.evaluation import pixels_to_model_input  # noqa: E402
from workflows.training.optim import build_optimizer  # noqa: E402
from workflows.tracking import MlflowClient, prepare_tracking  # noqa: E402
from workflows.training.driver import run_training  # noqa: E402
from workflows.training.plan import plan_run  # noqa: E402


def config_for(args, shards: Path, workers: int) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "name": f"bench-{workers}w",
            "model": {"variant": args.variant, "channels": 16},
            "data": {"shards": str(shards)},
            "optim": {"base_lr": 0.016, "warmup_steps": 5},
            "train": {"steps": args.steps, "micro_batch_size": args.batch // workers, "num_workers": workers,
                      "log_every": args.steps // 6, "checkpoint_every": 0, "eval_samples": 8},
        }
    )


def plain_loop(config: TrainConfig, shards: Path, steps: int) -> dict:
    """The baseline: the same model and step, one process, the batch held in memory."""
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    rows = read_tubelets(str(shards)).select_columns(["pixels"])
    batch = next(iter(rows.iter_torch_batches(batch_size=config.train.global_batch_size)))
    x = pixels_to_model_input(batch["pixels"])
    model = ViTok.from_name(config.model.variant, channels=config.model.channels)
    optimizer, schedule = build_optimizer(model, config)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = stage1_loss(model(x), x)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
        optimizer.step()
        schedule.step()
        times.append(time.perf_counter() - start)
    step = statistics.median(times[5:])
    return {"step_s": step, "samples_per_s": config.train.global_batch_size / step}


def trainer(config: TrainConfig, tracking: Path) -> dict:
    uri, experiment_id = prepare_tracking(f"sqlite:///{tracking}", "bench-train-step")
    result = run_training(plan_run(config), uri, experiment_id, storage=str(tracking.parent / "ray"))
    client = MlflowClient(uri)
    rates = [m.value for m in client.get_metric_history(result.run_id, "samples_per_s")][1:]  # drop warm-up
    waits = [m.value for m in client.get_metric_history(result.run_id, "data_wait_fraction")][1:]
    rate = statistics.median(rates)
    return {
        "step_s": config.train.global_batch_size / rate,
        "samples_per_s": rate,
        "data_wait_fraction": statistics.median(waits),
        "wall_s_incl_startup": result.wall_time_s,
    }


def environment() -> dict:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        "hardware": {"cpu": cpu, "cores": os.cpu_count(), "gpu": None},
        "torch": torch.__version__,
        "ray": ray.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="T-T/8")
    parser.add_argument("--batch", type=int, default=16, help="global batch size")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--quick", action="store_true", help="30 steps: a smoke run of the benchmark")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps = 30

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_sample_corpus(str(tmp / "corpus"))
        ray.init(num_cpus=(os.cpu_count() or 2) + 2, include_dashboard=False, log_to_driver=False)
        prepare_shards(str(tmp / "corpus"), str(tmp / "shards"), size=64)
        one = config_for(args, tmp / "shards", 1)
        plain = plain_loop(one, tmp / "shards", args.steps)
        ray1 = trainer(one, tmp / "one.db")
        ray2 = trainer(config_for(args, tmp / "shards", 2), tmp / "two.db")
        ray.shutdown()

    report = {
        **environment(),
        "model": args.variant,
        "input": "1x64x64",
        "global_batch": args.batch,
        "steps": args.steps,
        "plain": plain,
        "ray_deepspeed_1": ray1,
        "ray_deepspeed_2": ray2,
        "ratio_step_time_ray1_vs_plain": ray1["step_s"] / plain["step_s"],
        "speedup_2_vs_1_workers": ray2["samples_per_s"] / ray1["samples_per_s"],
        "goals": {"ratio_step_time_ray1_vs_plain": "<= 1.15", "data_wait_fraction": "<= 0.05"},
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
