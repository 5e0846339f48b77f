"""Peak dense bf16 throughput of known accelerators, for model FLOPs utilisation (MFU) on GPU runs."""

from __future__ import annotations

import torch

# Dense bf16 tensor-core FLOP/s from the vendors' data sheets (no sparsity).
GPU_PEAK_BF16_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,  # SXM; the PCIe card is lower, matched first below
    "H100 PCIe": 756e12,
    "A100": 312e12,
    "L40S": 362e12,
}


def gpu_peak_flops(device: torch.device) -> float | None:
    """The peak of the GPU at `device`, or None for a CPU or an unknown GPU (then no MFU is logged)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key in sorted(GPU_PEAK_BF16_FLOPS, key=len, reverse=True):  # the most specific name wins
        if key in name:
            return GPU_PEAK_BF16_FLOPS[key]
    return None
