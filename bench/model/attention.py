"""Attention kernels on the CPU: prints one JSON object comparing, side by side in one run, SDPA's flash and
math kernels (forward + backward, and forward alone) at the head shapes of the tiny and S/B models, over a
range of sequence lengths, in bf16 and fp32; for bf16 also flash on fp32 copies of the inputs (`train_fp32_*`,
the casts included); with the route `vitok.layers.attention` takes for each case and its time against the
fastest (`picked_vs_best`, goal >= 0.9 wherever it trains).

    .venv/bin/python bench/model/attention.py [--threads 1] [--batch 8] [--repeats 20]

One thread by default: each of the demo's two Ray Train workers runs torch on one core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.harness import environment  # noqa: E402
from vitok.layers import (  # noqa: E402
    CPU_BF16_FP32_BELOW_TOKENS,
    CPU_BF16_FP32_UP_TO_HEAD_DIM,
    attention,
    computes_in_fp32,
)

HEADS = {"T (width 128)": (4, 32), "S/B (head_dim 64)": (6, 64)}
LENGTHS = (16, 64, 128, 160, 192, 256, 512)


def milliseconds(fn, repeats: int, rounds: int = 3) -> float:
    """The best of `rounds` means over `repeats` calls: a sub-millisecond call is otherwise at the mercy of
    one interruption."""
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - start) / repeats * 1e3)
    return best


def case(batch: int, heads: int, head_dim: int, length: int, dtype: torch.dtype, repeats: int) -> dict:
    q, k, v = (torch.randn(batch, heads, length, head_dim, dtype=dtype, requires_grad=True) for _ in range(3))

    def train(kernel=None, upcast=False):
        def step():
            if kernel is None:
                out = attention(q, k, v)
            elif upcast:
                with sdpa_kernel(kernel):
                    out = F.scaled_dot_product_attention(q.float(), k.float(), v.float()).to(dtype)
            else:
                with sdpa_kernel(kernel):
                    out = F.scaled_dot_product_attention(q, k, v)
            out.sum().backward()
        return step

    def infer(kernel):
        def step():
            with torch.no_grad(), sdpa_kernel(kernel):
                F.scaled_dot_product_attention(q, k, v)
        return step

    flash, math = SDPBackend.FLASH_ATTENTION, SDPBackend.MATH
    train_ms = {"train_flash_ms": milliseconds(train(flash), repeats),
                "train_math_ms": milliseconds(train(math), repeats)}
    if dtype == torch.bfloat16:
        train_ms["train_fp32_flash_ms"] = milliseconds(train(flash, upcast=True), repeats)
    picked_ms = milliseconds(train(), repeats)
    row = {"length": length, **train_ms, "train_picked_ms": picked_ms,
           "forward_flash_ms": milliseconds(infer(flash), repeats),
           "forward_math_ms": milliseconds(infer(math), repeats)}  # fmt: skip
    row = {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
    row["train_picked"] = "fp32 flash" if computes_in_fp32(q) else "flash"
    row["picked_vs_best"] = round(min(train_ms.values()) / picked_ms, 3)
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--batch", type=int, default=8, help="sequences per call")
    p.add_argument("--repeats", type=int, default=20, help="timed calls per kernel and case")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for dtype in (torch.bfloat16, torch.float32):
        for label, (heads, head_dim) in HEADS.items():
            rows = [case(args.batch, heads, head_dim, n, dtype, args.repeats) for n in LENGTHS]
            results[f"{str(dtype).removeprefix('torch.')}, {label}, {heads} heads"] = rows
    worst = min(r["picked_vs_best"] for rows in results.values() for r in rows)
    report = {**environment(["vitok/layers.py", "bench"]), "torch": torch.__version__, "threads": args.threads,
              "batch": args.batch, "bf16_in_fp32_below_tokens": CPU_BF16_FP32_BELOW_TOKENS,
              "bf16_in_fp32_up_to_head_dim": CPU_BF16_FP32_UP_TO_HEAD_DIM, "cases": results,
              "worst_picked_vs_best": worst, "goals": {"worst_picked_vs_best": ">= 0.9"}}  # fmt: skip
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
