"""A bf16 step at ZeRO 0-2 runs no separate overflow check of the gradients, and at ZeRO-0 its optimiser steps in
multi-tensor operations (tune_engine): the same masters as DeepSpeed's own step, fewer operations and reads
per step, and the update of a non-finite gradient still skipped through its non-finite norm. Counted on CPU
with a dispatch mode: `aten::_local_scalar_dense` is what every `.item()`, `float(t)` and `bool(t)` runs (on
a GPU, a sync with the GPU idle after it), and every dispatched operation is a kernel launch on a GPU. Run in
subprocesses: one rank or two, gloo, on this machine's loopback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import REPO, free_port

PROBE = """
import os, sys
port, stage, world, rank = sys.argv[1:5]
os.environ.update(DS_ACCELERATOR="cpu", MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK=rank, WORLD_SIZE=world,
                  LOCAL_RANK=rank)
import deepspeed, torch
from torch.utils._python_dispatch import TorchDispatchMode
from vitok import ViTok
from workflows.config import TrainConfig
from workflows.training.evaluation import pixels_to_model_input
from workflows.training.weights import master_state
from workflows.training.worker import build_engine

deepspeed.init_distributed(dist_backend="gloo")
stage, world, rank = int(stage), int(world), int(rank)


class Dispatched(TorchDispatchMode):
    def __enter__(self):
        self.reads, self.ops = 0, 0
        return super().__enter__()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.reads += func.overloadpacket.__name__ == "_local_scalar_dense"
        self.ops += 1
        return func(*args, **(kwargs or {}))


# A clip far below the gradients' norm: every step clips.
config = TrainConfig.from_dict({"model": {"variant": "N-N/8", "channels": 8},
                                "optim": {"warmup_steps": 0, "grad_clip": 1e-3},
                                "train": {"micro_batch_size": 2, "num_workers": world, "zero_stage": stage,
                                          "precision": "bf16"}})
target = pixels_to_model_input(torch.randint(0, 256, (2, 1, 32, 32, 3), dtype=torch.uint8), torch.device("cpu"))


def new_engine():
    torch.manual_seed(0)
    return build_engine(config, ViTok.from_name("N-N/8", channels=8), torch.device("cpu"), world)


def step(engine, scale):
    loss = torch.nn.functional.mse_loss(engine(target.to(torch.bfloat16), sample=False).recon.float(), target)
    engine.backward(loss * scale)
    engine.step()


engine, _, frozen = new_engine()
step(engine, 1.0)
with Dispatched() as tuned:
    step(engine, 1.0)
print("reads", tuned.reads, "ops", tuned.ops, "params", sum(1 for p in engine.module.parameters() if p.requires_grad))
before = master_state(engine, frozen, stage)
step(engine, float("nan") if rank == world - 1 else 1.0)  # with two ranks, the last one's gradient alone
after = master_state(engine, frozen, stage)
print("nan_step_changed", sum(int(not torch.equal(before[k], after[k])) for k in before),
      "skipped", engine.skipped_steps)
if world == 1:  # the same steps with DeepSpeed's own step and checks, which tune_engine set aside on the instance
    own, _, _ = new_engine()
    del own.optimizer.__dict__["step" if stage == 0 else "check_overflow"]
    step(own, 1.0)
    with Dispatched() as checked:
        step(own, 1.0)
    step(own, float("nan"))
    own_after = master_state(own, frozen, stage)
    differ = sum(int(not torch.equal(after[k], own_after[k])) for k in after)
    gap = max(float(((after[k] - own_after[k]).abs() / own_after[k].abs().clamp(min=1e-3)).max()) for k in after)
    print("own_check ops", checked.ops, "reads", checked.reads, "masters_differ", differ, "skipped", own.skipped_steps,
          "relative_gap", gap)
"""


def run_probe(stage: int, world: int = 1) -> list[dict[str, list[str]]]:
    """Each rank's printed lines, by their first word."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    port = str(free_port())
    ranks = [subprocess.Popen([sys.executable, "-c", PROBE, port, str(stage), str(world), str(rank)], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in range(world)]  # fmt: skip
    outputs = []
    for proc in ranks:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        outputs.append({line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()})
    return outputs


@pytest.mark.parametrize("stage", [0, 1, 2])
def test_bf16_step_runs_no_overflow_check_and_skips_a_nan_gradient(stage):
    [lines] = run_probe(stage)
    reads, ops, params = int(lines["reads"][0]), int(lines["reads"][2]), int(lines["reads"][4])
    # The gradient norm's reads (and the clip's) only; DeepSpeed's overflow check at ZeRO-0 read once per
    # parameter.
    assert params > 20 and reads <= 4, f"{reads} host reads in one step of {params} parameters"
    changed, skipped = int(lines["nan_step_changed"][0]), int(lines["nan_step_changed"][2])
    assert changed == 0 and skipped == 1, f"a NaN gradient changed {changed} masters ({skipped} steps skipped)"
    own_ops, own_reads, differ, own_skipped = (int(lines["own_check"][i]) for i in (1, 3, 5, 7))
    gap = float(lines["own_check"][9])
    # The same masters as DeepSpeed's own step after the same clipped steps, and the same NaN step skipped. At
    # ZeRO 1-2 the check only read, so they are equal to the bit; at ZeRO-0 the norm is summed in another order.
    assert own_skipped == 1 and (gap <= 1e-6 if stage == 0 else differ == 0), f"{differ} masters differ ({gap})"
    # At least eight operations per parameter tensor fewer (each a kernel launch on a GPU), and fewer reads.
    assert own_ops - ops >= 8 * params, f"{own_ops} operations per step with DeepSpeed's own, {ops} without"
    assert reads < own_reads, f"{own_reads} host reads per step with DeepSpeed's own, {reads} without"


@pytest.mark.parametrize("stage", [0, 2])
def test_bf16_step_skips_on_every_rank_when_one_rank_has_a_nan_gradient(stage):
    for rank, lines in enumerate(run_probe(stage, world=2)):
        changed, skipped = int(lines["nan_step_changed"][0]), int(lines["nan_step_changed"][2])
        assert changed == 0 and skipped == 1, f"rank {rank}: {changed} masters changed, {skipped} steps skipped"
