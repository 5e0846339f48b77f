"""An exponential moving average of the DiT's weights, which DiT and SiT sample and report from."""

from __future__ import annotations

import torch
from torch import nn


class WeightAverage:
    """fp32 copy of a model's state, moved towards it after every optimiser step: ema += (1 - decay) (w - ema).

    The tokenizer's WeightEMA reads DeepSpeed's partitioned master weights; a DDP model holds its full fp32
    weights on every rank, so this one reads the module directly and needs no collective.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.state = {name: value.detach().float().clone() for name, value in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for name, value in model.state_dict().items():
            self.state[name].lerp_(value.float(), 1.0 - self.decay)
