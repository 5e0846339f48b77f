"""Which compute precision "auto" means on this machine: bf16 where it runs natively, else fp32.

bf16 is the fast path on GPUs (every data-centre GPU since Ampere) and on CPUs with AVX512-BF16 or AMX. On
other CPUs PyTorch emulates bf16 matmuls, at 15-30x the cost of fp32 (docs/performance.md), so "auto"
takes fp32 there. A run's precision is resolved once, on the driver, and logged as the one that ran; ask for
"bf16" or "fp32" explicitly to override it (a CPU cluster whose nodes differ from the driver's machine).
"""

from __future__ import annotations

PRECISIONS = ("auto", "bf16", "fp32")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (Linux: its flags in /proc/cpuinfo; elsewhere: no)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def resolve_precision(requested: str, use_gpu: bool) -> str:
    """"bf16" or "fp32" for `requested` ("auto", "bf16" or "fp32").

    GPU workers are taken to compute bf16 natively (ask for fp32 on an older GPU). CPU workers are judged by
    this machine's CPU: a cluster's CPU nodes are taken to be of the driver's type.
    """
    if requested != "auto":
        return requested
    return "bf16" if use_gpu or cpu_has_native_bf16() else "fp32"
