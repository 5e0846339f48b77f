"""The tokenizer on one device (`ViTok.from_files`, from the bytes the driver read), encoding uint8 tubelets
into latent moments.

Precision: "bf16" runs the encoder under torch.autocast (bf16 matmuls, fp32 weights, norms and softmax as
autocast keeps them), "fp32" runs it as it is. "auto" picks bf16 where the device computes it natively
(workflows/runtime/precision.py), else fp32. The latents leave in fp32 either way; the storage dtype
is applied afterwards (schema.to_storage).
"""

from __future__ import annotations

import numpy as np
import torch

from vitok import ViTok
from workflows.training.evaluation import pixels_to_model_input


class LatentEncoder:
    def __init__(self, model: ViTok, precision: str, batch_size: int, device: torch.device):
        self.model = model
        self.precision = precision
        self.batch_size = batch_size
        self.device = device

    @torch.inference_mode()
    def moments(self, pixels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (N, T, H, W, 3) -> mean, logvar: float32 (N, T/q, H/p, W/p, c) on the CPU, in batches.

        The batches are fixed slices of the rows, so the same shard always meets the encoder the same way.
        """
        means, logvars = [], []
        for start in range(0, len(pixels), self.batch_size):
            x = pixels_to_model_input(torch.from_numpy(pixels[start : start + self.batch_size]), self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                mean, logvar = self.model.encode_moments(x)
            means.append(mean.float().cpu())
            logvars.append(logvar.float().cpu())
        return torch.cat(means), torch.cat(logvars)
