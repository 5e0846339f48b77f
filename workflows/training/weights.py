"""The model's true weights under DeepSpeed, and their exponential moving average.

In bf16 mode the engine's module holds bf16 copies; the weights that training actually updates are the fp32
master weights inside the optimiser (partitioned across ranks from ZeRO-1 on). Exports, evaluation and
the EMA read those, never the bf16 copies. DeepSpeed builds its masters from the module after casting it to
bf16, so they would start bf16-rounded: the fp32 weights are taken before the engine is built and written into
the masters after. Frozen parameters (stage 2's encoder) are not in the optimiser, and DeepSpeed casts them to
bf16 too, so their fp32 values are kept aside.
"""

from __future__ import annotations

import torch
from deepspeed.utils import safe_get_full_fp32_param, safe_set_full_fp32_param


def fp32_parameters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The fp32 values of every parameter, taken before DeepSpeed casts or partitions them."""
    return {name: p.detach().float().cpu().clone() for name, p in model.named_parameters()}


def start_masters_at(engine, weights: dict[str, torch.Tensor], zero_stage: int) -> dict[str, torch.Tensor]:
    """Writes `weights` (fp32_parameters of the model before `deepspeed.initialize`) into the engine's fp32
    masters, so training starts from the exact fp32 weights (stage 2 from the stage-1 export) rather than their
    bf16 rounding. Returns the frozen parameters' fp32 values, which master_state reads."""
    stage0 = _stage0_masters(engine) if zero_stage == 0 else {}
    trainable = {name: p for name, p in engine.module.named_parameters() if p.requires_grad}
    for name, param in trainable.items():
        value = weights[name].to(param.device)
        if zero_stage > 0:
            safe_set_full_fp32_param(param, value)  # this rank's partition of it
        elif id(param) in stage0:
            stage0[id(param)].data.copy_(value)
        # else fp32 at stage 0: the module's parameter is the master and was never cast.
    return {name: value for name, value in weights.items() if name not in trainable}


def _stage0_masters(engine) -> dict[int, torch.Tensor]:
    """id(bf16 param) -> fp32 master for DeepSpeed's stage-0 mixed-precision optimiser (its groups align)."""
    optimizer = engine.optimizer
    lows = getattr(optimizer, "fp16_groups", None) or getattr(optimizer, "bf16_groups", None) or []
    highs = getattr(optimizer, "fp32_groups", None) or getattr(optimizer, "fp32_groups_flat_partition", None) or []
    return {id(low): high for low_group, high_group in zip(lows, highs)
            for low, high in zip(low_group, high_group)}


def master_state(engine, frozen: dict[str, torch.Tensor], zero_stage: int) -> dict[str, torch.Tensor]:
    """The full fp32 state dict (parameters and buffers), on CPU, identical on every rank.

    A collective under ZeRO (each parameter's master is assembled from its rank partitions): every rank
    must call it at the same point.
    """
    module = engine.module
    stage0 = _stage0_masters(engine) if zero_stage == 0 else {}
    state: dict[str, torch.Tensor] = {}
    for name, param in module.named_parameters():
        if name in frozen:
            state[name] = frozen[name]
            continue
        master = safe_get_full_fp32_param(param) if zero_stage > 0 else stage0.get(id(param))
        if master is None:  # fp32 training without a separate master: the module's parameter is the weight
            master = param
        state[name] = master.detach().float().cpu().clone().view(param.ds_shape if hasattr(param, "ds_shape")
                                                                 else param.shape)
    for name, buffer in module.named_buffers():
        state[name] = buffer.detach().float().cpu().clone()
    return state


class WeightEMA:
    """An fp32 exponential moving average of the weights, updated after every optimiser step:
    ema = decay * ema + (1 - decay) * weights.

    Every rank keeps the full average (the master weights are gathered for each update, one collective per
    optimiser step under ZeRO), so it can be saved, evaluated and exported without further communication.
    """

    def __init__(self, decay: float, initial: dict[str, torch.Tensor]):
        self.decay = decay
        self.state = {name: value.clone() for name, value in initial.items()}

    def update(self, weights: dict[str, torch.Tensor]) -> None:
        for name, value in weights.items():
            self.state[name].mul_(self.decay).add_(value, alpha=1.0 - self.decay)
