"""The model's true weights under DeepSpeed, and their exponential moving average.

In bf16 mode the engine's module holds bf16 copies; the weights that training actually updates are the fp32
master weights inside the optimiser (partitioned across ranks from ZeRO-1 on). Exports, evaluation and
the EMA read those, never the bf16 copies. DeepSpeed builds its masters from the module after casting it to
bf16, so they would start bf16-rounded: the fp32 weights are taken before the engine is built and written into
the masters after. Frozen parameters (stage 2's encoder) are not in the optimiser, and DeepSpeed casts them to
bf16 too, so their fp32 values are kept aside.
"""

from __future__ import annotations

import contextlib

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
        else:  # the bf16 optimiser's fp32 copy, or in fp32 the module's parameter, which is the master
            stage0.get(id(param), param).data.copy_(value)
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


def local_masters(engine) -> list[torch.Tensor]:
    """The fp32 tensors this rank's torch optimiser steps: its partition of the flat masters (ZeRO 1-3), every
    master (ZeRO-0 in bf16), or the module's trainable parameters themselves (ZeRO-0 in fp32)."""
    zero3_partitions = getattr(engine.optimizer, "fp32_partitioned_groups_flat", None)
    if zero3_partitions is not None:  # ZeRO-3 hands them to the torch optimiser only while it steps
        return list(zero3_partitions)
    stepped = getattr(engine.optimizer, "optimizer", engine.optimizer)  # DeepSpeed's wrapper, if any, holds it
    return [param for group in stepped.param_groups for param in group["params"]]


class WeightEMA:
    """An fp32 exponential moving average of the weights, updated after every optimiser step:
    ema = decay * ema + (1 - decay) * weights.

    Each rank averages only the masters it owns (`local_masters`), so an update costs no communication and
    holds one more copy of this rank's partition. The full average is gathered, a collective like
    master_state, only when it is read: for evaluation, checkpoints and the export.
    """

    def __init__(self, decay: float, engine, frozen: dict[str, torch.Tensor], zero_stage: int):
        self.decay, self.engine, self.frozen, self.zero_stage = decay, engine, frozen, zero_stage
        self.local = [master.detach().clone() for master in local_masters(engine)]

    def update(self) -> None:
        # lerp reads and writes the average once (decay * ema + (1 - decay) * weights in one pass); a mul_ then
        # an add_ read it twice and write it twice, and the update is memory-bound. The foreach form is one call
        # for all tensors (on a GPU a few multi-tensor kernels instead of one launch per parameter).
        torch._foreach_lerp_(self.local, [master.detach() for master in local_masters(self.engine)], 1.0 - self.decay)

    def full_state(self) -> dict[str, torch.Tensor]:
        """The whole average as a state dict (as master_state gives the weights); every rank must call it."""
        with self._in_masters():
            return master_state(self.engine, self.frozen, self.zero_stage)

    def load_full_state(self, state: dict[str, torch.Tensor]) -> None:
        """Takes this rank's part of a whole average (a checkpoint's); every rank must call it."""
        with self._in_masters():
            start_masters_at(self.engine, state, self.zero_stage)

    @contextlib.contextmanager
    def _in_masters(self):
        """The average stands in for the masters, so DeepSpeed's own gather and scatter of the masters read and
        write it; the masters are put back after, and whatever was written is kept as the average."""
        masters = local_masters(self.engine)
        weights = [master.detach().clone() for master in masters]
        for master, average in zip(masters, self.local):
            master.data.copy_(average)
        try:
            yield
        finally:
            for master, average, weight in zip(masters, self.local, weights):
                average.copy_(master.detach())
                master.data.copy_(weight)
