"""Latent DiT training-step throughput and MFU: forward + backward samples/s against a peak measured in the same run.

    python bench/generator_step.py            # DiT-N on a tiny grid, DiT-S on S-B/16 image and S-B/4x16 video latents
    python bench/generator_step.py --quick    # smoke: small shapes, one timed step
    python bench/generator_step.py --compile  # also time torch.compile'd models (GPU runs)

One step is `flow_matching_loss` (noise, t, label dropout, the DiT forward) and its backward, on 1000-class
conditional models. FLOPs are analytic: 2 x forward MACs (vitok.generation.dit_forward_macs) x 3 for forward +
backward, per sample. MFU = achieved FLOP/s / peak FLOP/s of the same precision, the peak being the best of a
few big square matmuls timed here (bench/model_step.py's `matmul_peak`), so it is this machine's attainable
matmul rate, not a datasheet number. CPU: fp32, bf16 autocast and bf16 weights side by side; CUDA: bf16
autocast and bf16 weights, plus the DiT paper's reference workload DiT-XL/2 on 32x32x4 latents. Prints one
JSON object.
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
sys.path.insert(0, str(REPO / "bench"))

from model_step import matmul_peak, sync  # noqa: E402
from vitok.generation import DiT, DiTConfig, dit_forward_macs, flow_matching_loss  # noqa: E402

NUM_CLASSES = 1000
# (label, DiT variant, latent grid (T', H', W'), latent channels c, CPU batch, GPU batch); batch 0 = skipped there.
WORKLOADS = (
    ("tiny", "DiT-N/1", (1, 8, 8), 4, 32, 256),
    ("S-B/16 256p image latents", "DiT-S/1", (1, 16, 16), 16, 4, 128),
    ("S-B/4x16 16x128x128 video latents", "DiT-S/1", (4, 8, 8), 16, 4, 128),
    ("S-B/16 256p image latents", "DiT-L/1", (1, 16, 16), 16, 0, 64),
    ("DiT paper reference (SD-VAE 256p)", "DiT-XL/2", (1, 32, 32), 4, 0, 64),
)
QUICK_WORKLOADS = (
    ("tiny", "DiT-N/1", (1, 4, 4), 4, 8, 64),
    ("small video", "DiT-S/2", (2, 4, 4), 16, 1, 16),
)


def environment(device: torch.device) -> dict:
    env = harness_environment(["vitok", "bench/generator_step.py", "bench/model_step.py"])
    env["hardware"]["torch_threads"] = torch.get_num_threads()
    if device.type == "cuda":
        env["hardware"]["gpu"] = torch.cuda.get_device_name(device)
    return {**env, "torch": torch.__version__}


def step_rate(
    name: str, grid: tuple[int, int, int], channels: int, batch: int, device: torch.device, precision: str,
    compile_: bool, warmup: int, steps: int,
) -> dict:
    """Best seconds of forward + backward (flow-matching loss) over `steps` timed steps, and what follows from it.

    The best step, like the best matmul, is the figure: other jobs on a shared machine only slow steps down.

    precision: "fp32"; "bf16-autocast" (fp32 weights, cast to bf16 by autocast on every use); "bf16" (weights
    stored in bf16, as DeepSpeed's bf16 mode keeps them, so no per-step weight casts).
    """
    torch.manual_seed(0)
    config = DiTConfig.from_name(name, channels=channels, num_classes=NUM_CLASSES)
    model = DiT(config).to(device).train()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = model.to(dtype)
    runner = torch.compile(model) if compile_ else model
    x0 = torch.randn(batch, *grid, channels, device=device, dtype=dtype)
    y = torch.randint(0, NUM_CLASSES, (batch,), device=device)
    times = []
    for i in range(warmup + steps):
        sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-autocast"):
            loss = flow_matching_loss(runner, x0, y, null_class=config.null_class)
        loss.backward()
        model.zero_grad(set_to_none=True)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    seconds, median = min(times), sorted(times)[len(times) // 2]
    tokens = torch.Size(config.token_grid(*grid)).numel()
    flops_per_sample = 3 * 2 * dit_forward_macs(config, tokens)
    return {
        "model": name, "latent_grid": list(grid), "channels": channels, "batch": batch, "tokens": tokens,
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
    for label, name, grid, channels, cpu_batch, gpu_batch in workloads:
        batch = cpu_batch if device.type == "cpu" else gpu_batch
        if not batch:
            continue
        for precision in precisions:
            for compile_ in [False, True] if args.compile else [False]:
                r = step_rate(name, grid, channels, batch, device, precision, compile_, warmup=1, steps=steps)
                r["workload"] = label
                results.append(r)
                print(f"# {name} on {label} {'x'.join(map(str, grid))}x{channels} {precision}"
                      f"{' compiled' if compile_ else ''}: {r['samples_per_s']} samples/s", file=sys.stderr,
                      flush=True)  # fmt: skip

    # Peaks again at the end, keeping the better: other jobs sharing the cores can only lower a measurement.
    for precision in peaks:
        dtype = torch.float32 if precision == "fp32" else torch.bfloat16
        peaks[precision] = max(peaks[precision], matmul_peak(device, dtype, n, 3))
    for r in results:
        r["mfu"] = round(r["achieved_gflops"] * 1e9 / peaks[r["precision"].split("-")[0]], 3)
    report = {
        "benchmark": "latent DiT forward+backward (flow-matching loss), samples/s and MFU",
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
        by_workload: dict[str, dict[str, float]] = {}
        for r in results:
            if not r["compiled"]:
                key = f"{r['model']}@{'x'.join(map(str, r['latent_grid']))}x{r['channels']}"
                by_workload.setdefault(key, {})[r["precision"]] = r["samples_per_s"]
        report["cpu_precision_comparison"] = {
            key: {"fastest": max(by, key=by.get),
                  "speedup_over_fp32": {p: round(v / by["fp32"], 2) for p, v in by.items() if p != "fp32"}}
            for key, by in by_workload.items()
        }  # fmt: skip
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
