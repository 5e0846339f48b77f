"""ViTok training-step throughput and MFU: forward + backward samples/s against a peak measured in the same run.

    python bench/model_step.py            # tiny T-T/8 at 128p and S-B/16 at 256p; CPU fp32 and bf16 autocast
    python bench/model_step.py --quick    # smoke: small shapes, one timed step
    python bench/model_step.py --compile  # also time torch.compile'd models (GPU runs)

FLOPs are analytic: 2 x forward MACs (vitok.flops.forward_macs) x 3 for forward + backward, per sample.
MFU = achieved FLOP/s / peak FLOP/s of the same precision (fp32 or bf16), the peak being the best of a few big square matmuls
timed here, so it is this machine's attainable matmul rate, not a datasheet number. On CUDA the step runs in
bf16 autocast and with bf16 weights (SDPA picks its fused kernels); the fp32 CPU run uses no autocast.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import environment as harness_environment  # noqa: E402

from vitok import ViTok, ViTokConfig  # noqa: E402
from vitok.config import token_grid  # noqa: E402
from vitok.flops import forward_macs  # noqa: E402
from vitok.losses import stage1_loss  # noqa: E402

# (variant, resolution, CPU batch, GPU batch)
WORKLOADS = (("T-T/8", 128, 8, 64), ("S-B/16", 256, 2, 32))
QUICK_WORKLOADS = (("T-T/8", 64, 4, 16), ("S-B/16", 128, 1, 8))


def environment(device: torch.device) -> dict:
    env = harness_environment(["vitok", "bench/model_step.py"])
    env["hardware"]["torch_threads"] = torch.get_num_threads()
    if device.type == "cuda":
        env["hardware"]["gpu"] = torch.cuda.get_device_name(device)
    return {**env, "torch": torch.__version__}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


def step_rate(
    name: str, resolution: int, batch: int, device: torch.device, precision: str, compile_: bool, warmup: int,
    steps: int,
) -> dict:
    """Best seconds of forward + backward (stage-1 loss) over `steps` timed steps, and what follows from it.

    The best step, like the best matmul, is the figure: other jobs on a shared machine only slow steps down.

    precision: "fp32"; "bf16-autocast" (fp32 weights, cast to bf16 by autocast on every use); "bf16" (weights
    stored in bf16, as DeepSpeed's bf16 mode keeps them, so no per-step weight casts).
    """
    torch.manual_seed(0)
    config = ViTokConfig.from_name(name)
    model = ViTok(config).to(device).train()
    if precision == "bf16":
        model = model.to(torch.bfloat16)
    bf16 = precision == "bf16-autocast"
    runner = torch.compile(model) if compile_ else model
    x = torch.rand(batch, 1, resolution, resolution, 3, device=device) * 2 - 1
    if precision == "bf16":
        x = x.to(torch.bfloat16)
    times = []
    for i in range(warmup + steps):
        sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = runner(x)
        loss = stage1_loss(out, x)["loss"]
        loss.backward()
        model.zero_grad(set_to_none=True)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    seconds, median = min(times), sorted(times)[len(times) // 2]
    tokens = torch.Size(token_grid(config, 1, resolution, resolution)).numel()
    flops_per_sample = 3 * 2 * sum(forward_macs(config, tokens))
    return {
        "model": name, "resolution": resolution, "batch": batch, "tokens": tokens,
        "precision": precision, "compiled": compile_,
        "step_s": round(seconds, 4), "step_s_median": round(median, 4), "samples_per_s": round(batch / seconds, 3),
        "gflops_per_sample": round(flops_per_sample * 1e-9, 3),
        "achieved_gflops": round(flops_per_sample * batch / seconds * 1e-9, 1),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small shapes and one timed step (smoke test)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd models")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per case (default 5, quick 1)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    steps = args.steps or (1 if args.quick else 5)
    workloads = QUICK_WORKLOADS if args.quick else WORKLOADS

    # CPU: fp32 and bf16 side by side (these CPUs have AMX/AVX-512 bf16); CUDA: bf16 autocast, and bf16 weights
    # as the trainer's DeepSpeed bf16 mode keeps them.
    precisions = ["fp32", "bf16-autocast", "bf16"] if device.type == "cpu" else ["bf16-autocast", "bf16"]
    n = (1024 if args.quick else 4096) if device.type == "cpu" else 8192
    load_before = os.getloadavg()[0]
    peaks = {"fp32": matmul_peak(device, torch.float32, n, 3)} if "fp32" in precisions else {}
    peaks["bf16"] = matmul_peak(device, torch.bfloat16, n, 3)

    results = []
    for name, resolution, cpu_batch, gpu_batch in workloads:
        batch = cpu_batch if device.type == "cpu" else gpu_batch
        for precision in precisions:
            for compile_ in [False, True] if args.compile else [False]:
                r = step_rate(name, resolution, batch, device, precision, compile_, warmup=1, steps=steps)
                r["mfu"] = round(r["achieved_gflops"] * 1e9 / peaks[precision.split("-")[0]], 3)
                results.append(r)
                print(f"# {r['model']} {r['resolution']}p {r['precision']}{' compiled' if compile_ else ''}: "
                      f"{r['samples_per_s']} samples/s, MFU {r['mfu']}", file=sys.stderr, flush=True)  # fmt: skip

    # Peaks again at the end, keeping the better: other jobs sharing the cores can only lower a measurement.
    for precision in peaks:
        dtype = torch.float32 if precision == "fp32" else torch.bfloat16
        peaks[precision] = max(peaks[precision], matmul_peak(device, dtype, n, 3))
    for r in results:
        r["mfu"] = round(r["achieved_gflops"] * 1e9 / peaks[r["precision"].split("-")[0]], 3)
    report = {
        "benchmark": "vitok forward+backward (stage-1 loss), samples/s and MFU",
        **environment(device),
        "device": device.type,
        "quick": args.quick,
        # 1-minute load average at start and end: above the core count, other jobs shared the CPU
        "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "matmul_peak_gflops": {k: round(v * 1e-9, 1) for k, v in peaks.items()},
        "matmul_peak_size": n,
        "results": results,
    }
    if device.type == "cpu":
        faster = {}
        for name, resolution, *_ in workloads:
            by = {r["precision"]: r["samples_per_s"] for r in results if r["model"] == name and not r["compiled"]}
            speedup = {p: round(by[p] / by["fp32"], 2) for p in by if p != "fp32"}
            faster[f"{name}@{resolution}"] = {"fastest": max(by, key=by.get), "speedup_over_fp32": speedup}
        report["cpu_precision_comparison"] = faster
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
