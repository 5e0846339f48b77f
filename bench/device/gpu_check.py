"""The GPU check: the production path (Ray Train + DeepSpeed on CUDA) end to end in one call, against the plain
PyTorch step on the same device, with a bf16 matmul peak measured in the same call. Run it through
bench/device/run.sh, which installs the carried wheels and sets the environment:

    bash bench/device/run.sh OUT          # on the GPU machine: S-B/16 at 256p, DiT-L/1
    bash bench/device/run.sh --dry OUT    # here, on CPU: T-T/8 at 64p, DiT-N/1, a few steps, no compile

Stages, in this order:
1. the plain step of bench/model/model_step.py and bench/model/generator_step.py (`step_rate`: forward + backward, no
   optimiser step, so the trainer / plain ratio is a lower bound) on the same model, batch and device;
then, through the stable command lines only (never the workflows' or data_prep's Python internals):
2. synthetic images (smooth patterns, PIL) -> `python -m data_prep run` -> tubelet shards;
3. `workflows/train.py` on a sweep file written here: ZeRO-0 and ZeRO-2 with 1 worker, compiled
   (`train.compile: true`); samples/s read back with MLflow's client (the first logged window, which holds
   start-up and compilation, dropped);
4. `bench/device/step_profile.py --zero 0`: the trainer's step in one process against the plain step, against
   DeepSpeed's stock engine, and profiled (its JSON in "step_profile");
5. `workflows/cache_latents.py` with the first tokenizer that trained, then `workflows/train_generator.py`;
6. the trainer runs of stage 3 again, eager.

Writes OUT/gpu_check.json after every stage ("complete": false until the last), so a run cut off by the device
tool's limit still returns what it measured; every command's output goes to OUT/logs/stages.log. On the GPU the stages
share a time budget (SETTINGS' budget_s) that ends the check inside the device tool's 600 s. MLflow uses a local file
store (MLFLOW_ALLOW_FILE_STORE=true): the GPU machine carries mlflow-skinny only, without the SQLite stack.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.model import generator_step, model_step  # noqa: E402
from bench.model.step_timing import device_environment, matmul_peak  # noqa: E402
from vitok import ViTokConfig  # noqa: E402

# What each mode runs. GPU: the production sizes of the README's goals, each command limited so that one hang
# leaves time for the rest; dry: the same stages at the smallest sizes that still train, with a limit
# that only a hang reaches on a shared, busy machine.
SETTINGS = {
    "gpu": {"variant": "S-B/16", "size": 256, "images": 320, "batch": 32, "steps": 40, "log_every": 5,
            "compile": [False, True], "dit": "DiT-L/1", "dit_batch": 64, "dit_steps": 40,
            "plain_warmup": 3, "plain_steps": 10, "matmul_n": 8192, "stage_timeout_s": 240, "budget_s": 520},
    "dry": {"variant": "T-T/8", "size": 64, "images": 48, "batch": 8, "steps": 8, "log_every": 2,
            "compile": [False], "dit": "DiT-N/1", "dit_batch": 16, "dit_steps": 8,
            "plain_warmup": 1, "plain_steps": 3, "matmul_n": 1024, "stage_timeout_s": 900, "budget_s": None},
}  # fmt: skip
CHANNELS = 16  # latent channels c of the tokenizer (the README's S-B/16 figures use c = 16)
GOALS = {"trainer_vs_plain_compiled": 0.9, "tokenizer_train_mfu": 0.35}
MIN_STAGE_S = 45  # under this much of the budget left, a stage is skipped rather than started and cut off
RUNNING: list[subprocess.Popen] = []  # the stage now running, for end_stage_on_sigterm
STAGES_LOG = "stages.log"  # every stage's output, in OUT/logs/


def end_stage_on_sigterm(signum, frame) -> None:
    """Ends the running stage's process group (the command and the local Ray cluster it started) before
    exiting: a check stopped from outside (a test's timeout) must not leave a cluster behind."""
    for proc in RUNNING:
        os.killpg(proc.pid, signal.SIGKILL)
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for gpu_check.json, logs/ and work/")
    parser.add_argument("--dry", action="store_true", help="CPU, tiny sizes, no compile: the check of the check")
    parser.add_argument("--work", help="folder for the images, shards, MLflow store and Ray results (default: "
                        "OUT/work; the device tool returns at most 8 files from OUT, so the GPU run puts it elsewhere)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, end_stage_on_sigterm)
    s = SETTINGS["dry" if args.dry else "gpu"]
    device = torch.device("cpu" if args.dry else "cuda")
    out = Path(args.out).resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    work = Path(args.work).resolve() if args.work else out / "work"
    started = time.monotonic()
    report = {
        "benchmark": "GPU check: Ray Train + DeepSpeed trainer and DiT generator vs the plain PyTorch step",
        "mode": "dry (CPU)" if args.dry else "gpu",
        **environment(device),
        "settings": {k: v for k, v in s.items() if k not in ("stage_timeout_s", "budget_s")},
        "tracking": "MLflow local file store (mlflow-skinny on the GPU machine)",
        "plain_step": "forward + backward without the optimiser step: trainer / plain is a lower bound",
        "skipped": [] if not args.dry else [
            "train.compile: true (torch.compile on CPU builds C++ kernels for minutes on 2 cores)",
            "GPU memory (no GPU)"],
        "errors": [],
        "complete": False,
    }  # fmt: skip
    clock = StageClock(s["stage_timeout_s"], s["budget_s"], report)

    def save() -> None:  # the summary too, so that a run cut off by the device tool's limit has its ratios
        report["summary"] = summarise(report, s, peak, args.dry)
        report["wall_s"] = round(time.monotonic() - started, 1)
        (out / "gpu_check.json").write_text(json.dumps(report, indent=1))

    peak = matmul_peak(device, torch.bfloat16, s["matmul_n"], 3)
    report["matmul_peak_bf16_gflops"] = round(peak * 1e-9, 1)
    # The plain step first, in this process (the stages after it are subprocesses, so its CUDA memory is
    # released to them): the ratios' denominators are there even if a later stage runs out of time.
    report["plain"] = plain_steps(s, device)
    save()

    shards = work / "shards"
    write_images(work / "images", s["images"], s["size"] + s["size"] // 8)
    report["data_prep"] = run_stage("data_prep", [
        "-m", "data_prep", "run", "--input", str(work / "images"), "--output", str(shards),
        "--size", str(s["size"]), "--val-fraction", "0.2"], out, clock, report)  # fmt: skip
    save()

    tracking = (work / "mlruns").as_uri()
    runs = [(f"zero{zero}-{'compile' if compile_ else 'eager'}", zero, compile_)
            for compile_ in sorted(s["compile"], reverse=True) for zero in (0, 2)]  # fmt: skip
    sweep = write_sweep(work / "sweep.yaml", s, shards, not args.dry, runs)
    report["trainer"] = {}

    def train(name: str) -> None:
        if not clock.allows(name):
            return
        result = run_stage(name, [
            "workflows/train.py", "--config", str(sweep), "--run", name, "--tracking-uri", tracking,
            "--storage", str(work / "ray_results")], out, clock, report, device)  # fmt: skip
        result.update(logged_rates(tracking, name, "gpu-check"))
        report["trainer"][name] = result
        save()

    # The first compile mode's runs (compiled on the GPU), then the generator, the other mode's runs last: the
    # GPU goals are about the compiled runs, and a check cut off by its time budget loses what comes last.
    first_mode = runs[0][2]
    for name, _, compile_ in runs:
        if compile_ == first_mode:
            train(name)

    # Where the trainer's step time goes (bench/device/step_profile.py at ZeRO-0, eager, in one process), before
    # the generator: the trainer's gap to its plain step is the open question, the generator's path was at 0.96.
    if clock.allows("step_profile"):
        folder = work / "step_profile"
        result = run_stage("step_profile", [
            "bench/device/step_profile.py", "--zero", "0", "--out", str(folder), *(["--dry"] if args.dry else [])],
            out, clock, report, device)  # fmt: skip
        written = folder / "step_profile_zero0.json"  # rewritten after each of its parts: kept if cut off
        report["step_profile"] = {**result, "report": json.loads(written.read_text()) if written.is_file() else None}
        save()

    # The latents come from the first tokenizer that trained and exported.
    tokenizer = next((r["run_id"] for r in report["trainer"].values() if r["exit"] == 0 and r.get("run_id")), None)
    if tokenizer and clock.allows("cache_latents"):
        report["cache_latents"] = run_stage("cache_latents", [
            "workflows/cache_latents.py", "--shards", str(shards), "--tokenizer", f"runs:/{tokenizer}/model",
            "--output", str(work / "latents"), "--tracking-uri", tracking, "--batch-size", str(s["batch"])],
            out, clock, report, device)  # fmt: skip
        save()
    if report.get("cache_latents", {}).get("exit") == 0 and clock.allows("train_generator"):
        generation = work / "generation.yaml"
        generation.write_text(yaml.safe_dump({"generation": {
            "name": "gpu-check-dit", "model": s["dit"], "steps": s["dit_steps"], "micro_batch_size": s["dit_batch"],
            "use_gpu": not args.dry, "precision": "bf16", "lr": 1e-4, "warmup_steps": 5, "log_every": s["log_every"],
            "checkpoint_every": 0, "samples": 16, "sampler": "euler", "sample_steps": 10}}))  # fmt: skip
        result = run_stage("train_generator", [
            "workflows/train_generator.py", "--latents", str(work / "latents"), "--tokenizer-run", tokenizer,
            "--config", str(generation), "--tracking-uri", tracking, "--storage", str(work / "ray_results")],
            out, clock, report, device)  # fmt: skip
        result.update(logged_rates(tracking, "gpu-check-dit", None))
        report["generator"] = result
        save()

    for name, _, compile_ in runs:
        if compile_ != first_mode:
            train(name)

    # The peak again at the end, keeping the better (as bench/model/step_timing.Peaks does): other jobs sharing the
    # device or the cores can only lower a measurement.
    peak = max(peak, matmul_peak(device, torch.bfloat16, s["matmul_n"], 3))
    report["matmul_peak_bf16_gflops"] = round(peak * 1e-9, 1)
    report["complete"] = True
    save()
    print(json.dumps(report, indent=1))
    return 0 if not report["errors"] else 1


def environment(device: torch.device) -> dict:
    """bench/model/step_timing.device_environment (torch and the GPU's name among it) plus Ray, DeepSpeed and MLflow
    versions."""
    env = device_environment(device, ["vitok", "workflows", "data_prep", "bench"])
    versions = {}
    for package in ("ray", "deepspeed", "mlflow-skinny"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:  # reported; the stage that needs it fails with its log
            versions[package] = "missing"
    return {**env, "versions": versions}


def write_images(folder: Path, count: int, side: int) -> None:
    """`count` RGB PNGs of `side` px: sums of a few low-frequency sinusoids and a disc per channel, seeded, so
    the tokenizer sees smooth structure (edges, gradients) rather than noise it cannot compress."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side] / side
    for i in range(count):
        channels = []
        for _ in range(3):
            f = rng.uniform(0.5, 4.0, size=(3, 2))
            phase = rng.uniform(0, 2 * np.pi, size=3)
            wave = sum(np.sin(2 * np.pi * (f[k, 0] * x + f[k, 1] * y) + phase[k]) for k in range(3)) / 3
            cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3)
            disc = ((x - cx) ** 2 + (y - cy) ** 2 < r**2) * rng.uniform(-0.8, 0.8)
            channels.append(np.clip(0.5 + 0.4 * wave + disc, 0, 1))
        pixels = (np.stack(channels, axis=-1) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"pattern_{i:04d}.png")


def write_sweep(path: Path, s: dict, shards: Path, gpu: bool, runs: list[tuple[str, int, bool]]) -> Path:
    """A sweep file with one run per (ZeRO stage, compile), 1 worker each, bf16, for workflows/train.py."""
    sweep = {
        "sweep": "gpu-check",
        "experiment": "gpu-check",
        "base": {
            "model": {"variant": s["variant"], "channels": CHANNELS},
            "data": {"shards": str(shards), "media_type": "image"},
            "optim": {"base_lr": 0.016, "warmup_steps": 5},
            "train": {"steps": s["steps"], "micro_batch_size": s["batch"], "num_workers": 1, "use_gpu": gpu,
                      "precision": "bf16", "log_every": s["log_every"], "checkpoint_every": 0, "eval_samples": 8},
        },
        "runs": [{"name": name, "train": {"zero_stage": zero, "compile": compile_}} for name, zero, compile_ in runs],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


class StageClock:
    """Each stage's time limit: its own limit, cut to what is left of the whole check's budget (GPU run: the
    device tool ends a command at 600 s, and a check cut off there loses its last stages unsummarised). A stage
    that would start with under MIN_STAGE_S left is skipped and listed in the report's `skipped`."""

    def __init__(self, stage_timeout_s: int, budget_s: int | None, report: dict) -> None:
        self.stage_timeout_s, self.report = stage_timeout_s, report
        self.deadline = None if budget_s is None else time.monotonic() + budget_s

    def left(self) -> float:
        return math.inf if self.deadline is None else self.deadline - time.monotonic()

    def allows(self, stage: str) -> bool:
        if self.left() >= MIN_STAGE_S:
            return True
        self.report["skipped"].append(f"{stage}: under {MIN_STAGE_S} s of the check's time budget left")
        return False

    def timeout(self) -> float:
        return max(1.0, min(self.stage_timeout_s, self.left()))


def run_stage(name: str, args: list[str], out: Path, clock: StageClock, report: dict,
              device: torch.device | None = None) -> dict:
    """Runs `python ARGS` from the repository root, its output appended to OUT/logs/stages.log under a line that
    names the stage; returns its wall time, exit code and (on a GPU) the device's peak memory in use meanwhile.
    A failure is recorded, not raised: the stages after it still run and the report keeps what was measured.
    One log for all stages, since the device tool returns at most 8 files from OUT."""
    sampler = GpuMemorySampler() if device is not None and device.type == "cuda" else None
    start = time.monotonic()
    with open(out / "logs" / STAGES_LOG, "a") as log:
        log.write(f"\n===== stage {name}: python {' '.join(args)}\n")
        log.flush()
        # A session of its own, so that a timeout ends the local Ray cluster the command started with it.
        proc = subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        RUNNING.append(proc)
        try:
            code = proc.wait(timeout=clock.timeout())
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = "timeout"
        RUNNING.remove(proc)
    result = {"wall_s": round(time.monotonic() - start, 1), "exit": code}
    if sampler is not None:
        result["peak_gpu_memory_used_gib"] = sampler.stop()
    if code != 0:
        report["errors"].append(f"{name}: exit {code} (logs/{STAGES_LOG}, stage {name})")
    return result


class GpuMemorySampler:
    """The device's memory in use (NVML, every 0.2 s) while a stage runs, in another process: the peak of that
    is the stage's footprint plus the CUDA context, the only figure readable from outside the workers."""

    def __init__(self) -> None:
        import pynvml  # nvidia-ml-py, on the GPU machine

        pynvml.nvmlInit()
        self._nvml, self._handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        self._peak, self._done = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.2):
            self._peak = max(self._peak, self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return round(self._peak / 2**30, 2)


def logged_rates(tracking: str, run_name: str, experiment: str | None) -> dict:
    """The run's samples/s and data-wait fraction as it logged them to MLflow: the median over logged windows
    after the first (which holds start-up and, with compile, compilation), read with MLflow's client."""
    from workflows.tracking import metric_history, run_named, tracking_client

    client = tracking_client(tracking)
    run_id = run_named(client, run_name, experiment)
    if run_id is None:
        return {"run_id": None}
    rates = [value for _, value in metric_history(client, run_id, "samples_per_s")]
    waits = [value for _, value in metric_history(client, run_id, "data_wait_fraction")]
    result = {"run_id": run_id, "logged_windows": len(rates)}
    if len(rates) >= 2:
        result["samples_per_s"] = round(statistics.median(rates[1:]), 3)
    if len(waits) >= 2:
        result["data_wait_fraction"] = round(statistics.median(waits[1:]), 4)
    return result


def plain_steps(s: dict, device: torch.device) -> dict:
    """bench/model/model_step.py's and bench/model/generator_step.py's `step_rate` at the trainer's and generator's
    sizes: bf16 weights for the tokenizer (DeepSpeed's bf16 mode keeps them so), bf16 autocast for the DiT (as
    the generator trains), eager and (GPU) compiled. The median step is the figure compared with the trainer's
    median window."""
    results = {}
    for compile_ in s["compile"]:
        results[f"tokenizer_{'compile' if compile_ else 'eager'}"] = measured(lambda: model_step.step_rate(
            s["variant"], s["size"], s["batch"], device, "bf16", compile_, s["plain_warmup"], s["plain_steps"]),
            device)  # fmt: skip
    grid = s["size"] // ViTokConfig.from_name(s["variant"]).patch_size
    results["generator_eager"] = measured(lambda: generator_step.step_rate(
        s["dit"], (1, grid, grid), CHANNELS, s["dit_batch"], device, "bf16-autocast", False, s["plain_warmup"],
        s["plain_steps"]), device)  # fmt: skip
    return results


def measured(step, device: torch.device) -> dict:
    """One `step_rate` call with its median samples/s and (GPU) peak memory allocated."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    r = step()
    r["samples_per_s_median"] = round(r["batch"] / r["step_s_median"], 3)
    if device.type == "cuda":
        r["peak_gpu_memory_allocated_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        torch.cuda.empty_cache()
    return r


def summarise(report: dict, s: dict, peak: float, dry: bool) -> dict:
    """MFU of each trainer run (its samples/s x the plain step's FLOPs per sample / the matmul peak), trainer /
    plain ratios, and the goals: checked on the GPU only (the dry run's tiny model says nothing about them)."""
    plain, summary = report["plain"], {"ratios": {}, "mfu": {}}
    for name, r in plain.items():
        summary["mfu"][f"plain_{name}"] = round(r["samples_per_s_median"] * r["gflops_per_sample"] * 1e9 / peak, 4)
    flops = plain["tokenizer_eager"]["gflops_per_sample"] * 1e9
    for name, run in report.get("trainer", {}).items():
        if "samples_per_s" not in run:
            continue
        mode = "compile" if name.endswith("compile") else "eager"
        summary["mfu"][name] = round(run["samples_per_s"] * flops / peak, 4)
        summary["ratios"][f"{name}_vs_plain_{mode}"] = round(
            run["samples_per_s"] / plain[f"tokenizer_{mode}"]["samples_per_s_median"], 3)
    generator = report.get("generator", {})
    if "samples_per_s" in generator:
        dit_flops = plain["generator_eager"]["gflops_per_sample"] * 1e9
        summary["mfu"]["generator"] = round(generator["samples_per_s"] * dit_flops / peak, 4)
        summary["ratios"]["generator_vs_plain_eager"] = round(
            generator["samples_per_s"] / plain["generator_eager"]["samples_per_s_median"], 3)
    compiled = [v for k, v in summary["ratios"].items() if k.endswith("_vs_plain_compile")]
    trainer_mfu = [v for k, v in summary["mfu"].items() if k.startswith("zero")]
    best_ratio = max(compiled) if compiled else None
    best_mfu = max(trainer_mfu) if trainer_mfu else None
    why = "dry run: a tiny model on CPU says nothing about the GPU goals" if dry else None
    summary["goals"] = {
        "trainer_vs_plain_compiled": {"goal": f">= {GOALS['trainer_vs_plain_compiled']}", "value": best_ratio,
                                      "met": None if dry or best_ratio is None
                                      else best_ratio >= GOALS["trainer_vs_plain_compiled"], "not_checked": why},
        "tokenizer_train_mfu": {"goal": f">= {GOALS['tokenizer_train_mfu']} ({s['variant']} at {s['size']}p)",
                                "value": best_mfu,
                                "met": None if dry or best_mfu is None else best_mfu >= GOALS["tokenizer_train_mfu"],
                                "not_checked": why},
    }  # fmt: skip
    summary["finite"] = all(math.isfinite(v) for v in [*summary["ratios"].values(), *summary["mfu"].values()])
    return summary


if __name__ == "__main__":
    sys.exit(main())
