"""Where one tokenizer training step's time goes: the trainer's own `TokenizerState.step` (DeepSpeed engine,
objective, augmentation; workflows/training/worker.py) in this process, without Ray, beside the plain step of
bench/model/model_step.py on the same model, batch and device, with torch.profiler's table of the trainer's steps.

The GPU check (bench/device/gpu_check.py) measures how far the trainer is from the plain step; this says why.
Batches are synthetic uint8 pixels already on the device, as Ray Data's `iter_torch_batches` hands them to a
GPU worker, so the data path is not in the figures.

    python bench/device/step_profile.py --zero 0 --out OUT           # GPU: S-B/16 256p batch 32, bf16, eager
    python bench/device/step_profile.py --dry --zero 2 --out OUT     # CPU: T-T/8 64p batch 8

Writes OUT/step_profile_zeroN.json after each part (trainer timing, the stock engine's, plain step, profile;
"complete" after the last): the trainer's and the plain step's median seconds (synchronised after every step),
their ratio, the same trainer on DeepSpeed's engine as `deepspeed.initialize` builds it (without
`tune_engine`'s changes) against the tuned one (`stock_vs_tuned`), and the profiler's top operators by self
device time and by self CPU time over a few steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.model import model_step  # noqa: E402
from bench.harness import environment  # noqa: E402

SIZES = {"gpu": {"variant": "S-B/16", "size": 256, "batch": 32, "warmup": 5, "steps": 20, "profiled": 3},
         "dry": {"variant": "T-T/8", "size": 64, "batch": 8, "warmup": 2, "steps": 4, "profiled": 2}}  # fmt: skip
TOP = 25  # operators kept in each profiler table
STARTED = time.monotonic()


def progress(what: str) -> None:
    """One line with the seconds since start: a run cut off by a time limit still says how far it got."""
    print(f"[{time.monotonic() - STARTED:6.1f} s] {what}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for step_profile_zeroN.json")
    parser.add_argument("--zero", type=int, default=0, choices=(0, 1, 2, 3), help="ZeRO stage (default 0)")
    parser.add_argument("--dry", action="store_true", help="CPU, tiny sizes: the check of the script")
    args = parser.parse_args(argv)
    s = SIZES["dry" if args.dry else "gpu"]
    device = torch.device("cpu" if args.dry else "cuda", 0)
    # One rank of a one-process group, as Ray Train sets it up for a single worker.
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ.get("MASTER_PORT", "29531"), RANK="0",
                      WORLD_SIZE="1", LOCAL_RANK="0")  # fmt: skip
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=0, world_size=1)
    progress("process group up")

    from workflows.config import TrainConfig
    from workflows.runs.spec import WorkerContext
    from workflows.training.plan import plan_for_input, resolve_model_config
    from workflows.training.worker import TokenizerState

    config = TrainConfig.from_dict({
        "name": f"step-profile-zero{args.zero}",
        "model": {"variant": s["variant"], "channels": 16},
        "optim": {"base_lr": 0.016, "warmup_steps": 5},
        "train": {"steps": 1000, "micro_batch_size": s["batch"], "num_workers": 1, "use_gpu": device.type == "cuda",
                  "precision": "bf16", "zero_stage": args.zero, "log_every": 1000, "checkpoint_every": 0},
    })  # fmt: skip
    plan = plan_for_input(config, resolve_model_config(config), 1, s["size"], train_rows=10 * s["batch"])
    torch.manual_seed(0)
    state = TokenizerState(plan, WorkerContext(0, 1, None))
    progress("engine built")
    pixels = torch.randint(0, 256, (s["batch"], 1, s["size"], s["size"], 3), dtype=torch.uint8, device=device)
    batches = iter(lambda: {"pixels": pixels}, None)  # endless

    def stepper(state: TokenizerState):
        def trainer_step(step: int) -> None:
            terms = state.step(step, batches)
            float(terms["loss"].detach())  # the host sync the logging steps make, here on every step

        return trainer_step

    trainer_step = stepper(state)

    report = {
        "benchmark": "one tokenizer training step: the trainer's TokenizerState.step vs the plain step",
        **environment(["vitok", "workflows", "bench"]),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "settings": {**s, "zero_stage": args.zero, "precision": "bf16", "compile": False},
        "plain_note": "forward + backward only (bench/model/model_step.py step_rate), no optimiser step",
        "complete": False,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save = lambda: (out / f"step_profile_zero{args.zero}.json").write_text(json.dumps(report, indent=1))  # noqa: E731

    tuned_times = timed(trainer_step, s["warmup"], s["steps"], device)
    report["trainer_step_s_median"] = round(statistics.median(tuned_times), 5)
    save()
    progress(f"trainer step timed: {report['trainer_step_s_median']} s")

    # The same trainer on DeepSpeed's engine as deepspeed.initialize builds it, without tune_engine's changes
    # (DeepSpeed's own ZeRO-0 step and overflow checks, and at ZeRO-0 the all-reduce over a group of one), timed
    # between two runs of the tuned one, so that a drift of the device's speed shows in neither figure alone.
    with mock.patch("workflows.training.worker.tune_engine", lambda *args: None):
        torch.manual_seed(0)
        stock = TokenizerState(plan, WorkerContext(0, 1, None))
    stock_times = timed(stepper(stock), s["warmup"], s["steps"], device)
    del stock
    tuned_times += timed(trainer_step, 0, s["steps"], device)
    report["trainer_stock_step_s_median"] = round(statistics.median(stock_times), 5)
    report["trainer_tuned_step_s_median_both_runs"] = round(statistics.median(tuned_times), 5)
    report["stock_vs_tuned"] = round(statistics.median(stock_times) / statistics.median(tuned_times), 3)
    save()
    progress(f"stock DeepSpeed engine timed: {report['trainer_stock_step_s_median']} s")

    # The profile last: on a GPU its trace is the slowest and least certain part.
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as profile:
        for step in range(s["profiled"]):
            trainer_step(s["warmup"] + s["steps"] + step + 1)
        synchronize(device)
    progress("trainer steps profiled")
    del state
    plain = model_step.step_rate(s["variant"], s["size"], s["batch"], device, "bf16", False, s["warmup"], s["steps"])
    report["plain_step_s_median"] = plain["step_s_median"]
    report["plain_vs_trainer"] = round(plain["step_s_median"] / report["trainer_step_s_median"], 3)
    save()
    progress(f"plain step timed: {plain['step_s_median']} s")

    if device.type == "cuda":
        report["top_by_self_device_time"] = table(profile, "self_device_time_total", s["profiled"])
    report["top_by_self_cpu_time"] = table(profile, "self_cpu_time_total", s["profiled"])
    report["complete"] = True
    save()
    progress("profile tables written")
    print(json.dumps({k: v for k, v in report.items() if not k.startswith("top_")}, indent=1))
    torch.distributed.destroy_process_group()
    return 0


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step, warmup: int, steps: int, device: torch.device) -> list[float]:
    """Seconds of each of `steps` calls of step(i) after `warmup` untimed ones, synchronised around each."""
    times = []
    for i in range(1, warmup + steps + 1):
        synchronize(device)
        start = time.perf_counter()
        step(i)
        synchronize(device)
        if i > warmup:
            times.append(time.perf_counter() - start)
    return times


def table(profile, key: str, steps: int) -> list[dict]:
    """The profiler's TOP operators by `key`, each with its calls, self CPU and self device milliseconds per step."""
    events = sorted(profile.key_averages(), key=lambda e: getattr(e, key), reverse=True)[:TOP]
    return [{"name": e.key, "calls_per_step": round(e.count / steps, 1),
             "self_cpu_ms_per_step": round(e.self_cpu_time_total / 1e3 / steps, 3),
             "self_device_ms_per_step": round(getattr(e, "self_device_time_total", 0) / 1e3 / steps, 3)}
            for e in events]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
