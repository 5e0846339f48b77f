"""What the model-step benchmarks share (bench/model/model_step.py for the tokenizer, bench/model/generator_step.py for
the latent DiT, and the GPU check's plain steps): timing a training step, the device's measured matmul peak, and the
figures and MFU that follow from them.

The best of several timed steps, like the best of several matmuls, is the figure: other jobs on a shared
machine only slow a measurement down.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Callable

import torch

from bench.harness import environment as harness_environment


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_environment(device: torch.device, watched: list[str]) -> dict:
    """bench.harness.environment, plus torch's thread count, the GPU's name on CUDA and torch's version."""
    env = harness_environment(watched)
    env["hardware"]["torch_threads"] = torch.get_num_threads()
    if device.type == "cuda":
        env["hardware"]["gpu"] = torch.cuda.get_device_name(device)
    return {**env, "torch": torch.__version__}


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, repeats: int) -> float:
    """Best FLOP/s of an n x n x n matmul in `dtype` (2 n^3 FLOPs each)."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up: kernel selection, page faults
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def time_steps(step: Callable[[], None], device: torch.device, warmup: int, steps: int) -> tuple[float, float]:
    """(best, median) seconds of `step` over `steps` timed calls after `warmup` untimed ones."""
    times = []
    for i in range(warmup + steps):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return min(times), sorted(times)[len(times) // 2]


def rate_figures(batch: int, best: float, median: float, flops_per_sample: float) -> dict:
    """A timed step's figures: seconds (best and median), samples/s and achieved GFLOP/s of the best step."""
    return {
        "step_s": round(best, 4), "step_s_median": round(median, 4), "samples_per_s": round(batch / best, 3),
        "gflops_per_sample": round(flops_per_sample * 1e-9, 3),
        "achieved_gflops": round(flops_per_sample * batch / best * 1e-9, 1),
    }  # fmt: skip


def parse_step_arguments(description: str, argv: list[str] | None) -> argparse.Namespace:
    """The command line both step benchmarks take; `device` comes back as a torch.device and `steps` filled in."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small shapes and one timed step (smoke test)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd models")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per case (default 5, quick 1)")
    args = parser.parse_args(argv)
    args.device = torch.device(args.device)
    args.steps = args.steps or (1 if args.quick else 5)
    return args


class Peaks:
    """The matmul peak of each precision a step benchmark measures, taken before its steps and again after them
    (`finish`, keeping the better), and the MFU of its results against them.

    CPU: fp32, bf16 autocast and bf16 weights side by side (these CPUs have AMX/AVX-512 bf16); CUDA: bf16 autocast
    and bf16 weights, as the trainer's DeepSpeed bf16 mode keeps them.
    """

    def __init__(self, device: torch.device, quick: bool):
        self.device = device
        self.precisions = ["fp32", "bf16-autocast", "bf16"] if device.type == "cpu" else ["bf16-autocast", "bf16"]
        self.n = (1024 if quick else 4096) if device.type == "cpu" else 8192
        self.load_before = os.getloadavg()[0]
        self.flops: dict[str, float] = {}
        self._measure()

    def _measure(self) -> None:
        for precision in dict.fromkeys(p.split("-")[0] for p in self.precisions):  # fp32 (CPU only), bf16
            dtype = torch.float32 if precision == "fp32" else torch.bfloat16
            self.flops[precision] = max(self.flops.get(precision, 0.0), matmul_peak(self.device, dtype, self.n, 3))

    def finish(self, results: list[dict]) -> None:
        """Measures the peaks again, keeping the better (other jobs sharing the cores can only lower a
        measurement), and sets each result's "mfu" against them."""
        self._measure()
        for result in results:
            result["mfu"] = self.mfu(result)

    def mfu(self, result: dict) -> float:
        return round(result["achieved_gflops"] * 1e9 / self.flops[result["precision"].split("-")[0]], 3)

    def report(self) -> dict:
        """The peaks and the load around the run, for the benchmark's JSON."""
        return {
            # 1-minute load average at start and end: above the core count, other jobs shared the CPU
            "loadavg_1min": [round(self.load_before, 2), round(os.getloadavg()[0], 2)],
            "matmul_peak_gflops": {k: round(v * 1e-9, 1) for k, v in self.flops.items()},
            "matmul_peak_size": self.n,
        }
