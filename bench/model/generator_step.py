"""Latent DiT training-step throughput and MFU: forward + backward samples/s against a peak measured in the same run.

    python bench/model/generator_step.py    # DiT-N on a tiny grid, DiT-S on S-B/16 image and S-B/4x16 video latents
    python bench/model/generator_step.py --quick    # smoke: small shapes, one timed step
    python bench/model/generator_step.py --compile  # also time torch.compile'd models (GPU runs)

One step is `flow_matching_loss` (noise, t, label dropout, the DiT forward) and its backward, on 1000-class
conditional models. FLOPs are analytic: 2 x forward MACs (vitok.generation.dit_forward_macs) x 3 for forward +
backward, per sample. MFU = achieved FLOP/s / peak FLOP/s of the same precision, the peak being the best of a
few big square matmuls timed here (bench/model/step_timing.py's `matmul_peak`), so it is this machine's attainable
matmul rate, not a datasheet number. CPU: fp32, bf16 autocast and bf16 weights side by side; CUDA: bf16
autocast and bf16 weights, plus the DiT paper's reference workload DiT-XL/2 on 32x32x4 latents. Prints one
JSON object.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.model.step_timing import (Peaks, device_environment, parse_step_arguments, rate_figures,  # noqa: E402
                               time_steps)
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


def step_rate(
    name: str, grid: tuple[int, int, int], channels: int, batch: int, device: torch.device, precision: str,
    compile_: bool, warmup: int, steps: int,
) -> dict:
    """Best seconds of forward + backward (flow-matching loss) over `steps` timed steps, and what follows from it.

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

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-autocast"):
            loss = flow_matching_loss(runner, x0, y, null_class=config.null_class)
        loss.backward()
        model.zero_grad(set_to_none=True)

    best, median = time_steps(step, device, warmup, steps)
    tokens = torch.Size(config.token_grid(*grid)).numel()
    flops_per_sample = 3 * 2 * dit_forward_macs(config, tokens)
    return {
        "model": name, "latent_grid": list(grid), "channels": channels, "batch": batch, "tokens": tokens,
        "precision": precision, "compiled": compile_, **rate_figures(batch, best, median, flops_per_sample),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_step_arguments(__doc__.split("\n\n")[0], argv)
    device, steps = args.device, args.steps
    workloads = QUICK_WORKLOADS if args.quick else WORKLOADS
    peaks = Peaks(device, args.quick)

    results = []
    for label, name, grid, channels, cpu_batch, gpu_batch in workloads:
        batch = cpu_batch if device.type == "cpu" else gpu_batch
        if not batch:
            continue
        for precision in peaks.precisions:
            for compile_ in [False, True] if args.compile else [False]:
                r = step_rate(name, grid, channels, batch, device, precision, compile_, warmup=1, steps=steps)
                r["workload"] = label
                results.append(r)
                print(f"# {name} on {label} {'x'.join(map(str, grid))}x{channels} {precision}"
                      f"{' compiled' if compile_ else ''}: {r['samples_per_s']} samples/s", file=sys.stderr,
                      flush=True)  # fmt: skip

    peaks.finish(results)
    report = {
        "benchmark": "latent DiT forward+backward (flow-matching loss), samples/s and MFU",
        **device_environment(device, ["vitok", "bench/model/generator_step.py", "bench/model/step_timing.py"]),
        "device": device.type,
        "quick": args.quick,
        **peaks.report(),
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
