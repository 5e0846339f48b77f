"""A bf16 step at ZeRO-0 reads the device back a fixed few times, not once per parameter (on a GPU each read is a
sync with the GPU idle after it), and a non-finite gradient still skips the update. Counted on CPU with a
dispatch mode: `aten::_local_scalar_dense` is what every `.item()`, `float(t)` and `bool(t)` runs. Run in a
subprocess: one rank, gloo, on this process's loopback."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import REPO

PROBE = """
import os, sys
os.environ.update(DS_ACCELERATOR="cpu", MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[1], RANK="0",
                  WORLD_SIZE="1", LOCAL_RANK="0")
import deepspeed, torch
from torch.utils._python_dispatch import TorchDispatchMode
from vitok import ViTok
from workflows.config import TrainConfig
from workflows.training.evaluation import pixels_to_model_input
from workflows.training.weights import master_state
from workflows.training.worker import build_engine

deepspeed.init_distributed(dist_backend="gloo")


class HostReads(TorchDispatchMode):
    count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        HostReads.count += func.overloadpacket.__name__ == "_local_scalar_dense"
        return func(*args, **(kwargs or {}))


config = TrainConfig.from_dict({"model": {"variant": "N-N/8", "channels": 8}, "optim": {"warmup_steps": 0},
                                "train": {"micro_batch_size": 2, "num_workers": 1, "zero_stage": 0,
                                          "precision": "bf16"}})
torch.manual_seed(0)
engine, _, frozen = build_engine(config, ViTok.from_name("N-N/8", channels=8), torch.device("cpu"), 1)
target = pixels_to_model_input(torch.randint(0, 256, (2, 1, 32, 32, 3), dtype=torch.uint8), torch.device("cpu"))


def step(scale):
    loss = torch.nn.functional.mse_loss(engine(target.to(torch.bfloat16), sample=False).recon.float(), target)
    engine.backward(loss * scale)
    engine.step()


step(1.0)
with HostReads():
    step(1.0)
print("reads", HostReads.count, "params", sum(1 for p in engine.module.parameters() if p.requires_grad))
before = master_state(engine, frozen, 0)
step(float("nan"))
after = master_state(engine, frozen, 0)
print("nan_step_changed", sum(int(not torch.equal(before[k], after[k])) for k in before),
      "skipped", engine.skipped_steps)
"""


def test_bf16_zero0_step_reads_the_device_a_few_times_and_skips_a_nan_gradient():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", PROBE, "29627"], capture_output=True, text=True, cwd=REPO,
                          timeout=600, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines() if line.split()}
    reads, params = int(lines["reads"][0]), int(lines["reads"][2])
    # The gradient norm's reads (and the clip's) only; DeepSpeed's overflow check read once per parameter.
    assert params > 20 and reads <= 4, f"{reads} host reads in one step of {params} parameters"
    changed, skipped = int(lines["nan_step_changed"][0]), int(lines["nan_step_changed"][2])
    assert changed == 0 and skipped == 1, f"a NaN gradient changed {changed} masters ({skipped} steps skipped)"
