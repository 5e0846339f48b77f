"""ViTok training-step throughput and MFU: forward + backward samples/s against a peak measured in the same run.

    python bench/model/model_step.py            # tiny T-T/8 at 128p and S-B/16 at 256p; CPU fp32 and bf16 autocast
    python bench/model/model_step.py --quick    # smoke: small shapes, one timed step
    python bench/model/model_step.py --compile  # also time torch.compile'd models (GPU runs)

FLOPs are analytic: 2 x forward MACs (vitok.flops.forward_macs) x 3 for forward + backward, per sample.
MFU = achieved FLOP/s / peak FLOP/s of the same precision (fp32 or bf16), the peak being the best of a few big
square matmuls timed here (bench/model/step_timing.py), so it is this machine's attainable matmul rate, not a datasheet
number. On CUDA the step runs in bf16 autocast and with bf16 weights (SDPA picks its fused kernels); the fp32
CPU run uses no autocast. Prints one JSON object.
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

from vitok import ViTok, ViTokConfig  # noqa: E402
from vitok.config import token_grid  # noqa: E402
from vitok.flops import forward_macs  # noqa: E402
from vitok.losses import stage1_loss  # noqa: E402

# (variant, resolution, CPU batch, GPU batch)
WORKLOADS = (("T-T/8", 128, 8, 64), ("S-B/16", 256, 2, 32))
QUICK_WORKLOADS = (("T-T/8", 64, 4, 16), ("S-B/16", 128, 1, 8))


def step_rate(
    name: str, resolution: int, batch: int, device: torch.device, precision: str, compile_: bool, warmup: int,
    steps: int,
) -> dict:
    """Best seconds of forward + backward (stage-1 loss) over `steps` timed steps, and what follows from it.

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

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = runner(x)
        stage1_loss(out, x)["loss"].backward()
        model.zero_grad(set_to_none=True)

    best, median = time_steps(step, device, warmup, steps)
    tokens = torch.Size(token_grid(config, 1, resolution, resolution)).numel()
    flops_per_sample = 3 * 2 * sum(forward_macs(config, tokens))
    return {
        "model": name, "resolution": resolution, "batch": batch, "tokens": tokens,
        "precision": precision, "compiled": compile_, **rate_figures(batch, best, median, flops_per_sample),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_step_arguments(__doc__.split("\n\n")[0], argv)
    device, steps = args.device, args.steps
    workloads = QUICK_WORKLOADS if args.quick else WORKLOADS
    peaks = Peaks(device, args.quick)

    results = []
    for name, resolution, cpu_batch, gpu_batch in workloads:
        batch = cpu_batch if device.type == "cpu" else gpu_batch
        for precision in peaks.precisions:
            for compile_ in [False, True] if args.compile else [False]:
                r = step_rate(name, resolution, batch, device, precision, compile_, warmup=1, steps=steps)
                print(f"# {r['model']} {r['resolution']}p {r['precision']}{' compiled' if compile_ else ''}: "
                      f"{r['samples_per_s']} samples/s, MFU {peaks.mfu(r)}", file=sys.stderr, flush=True)  # fmt: skip
                results.append(r)

    peaks.finish(results)
    report = {
        "benchmark": "vitok forward+backward (stage-1 loss), samples/s and MFU",
        **device_environment(device, ["vitok", "bench/model/model_step.py", "bench/model/step_timing.py"]),
        "device": device.type,
        "quick": args.quick,
        **peaks.report(),
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
