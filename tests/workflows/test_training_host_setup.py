"""What a training process is given before its first step: the fused AdamW (CPU and GPU; `optim.fused_adamw:
false` turns it off) that steps the parameters as the unfused one does, and the allocator every Ray worker of a
job starts with (Ray's jemalloc, freed memory kept), which reuses large temporaries instead of faulting in fresh
pages for each one."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import torch

from data_prep.ray_session import ALLOCATOR_ENV
from tests.helpers import REPO
from vitok import ViTok
from workflows.config import TrainConfig
from workflows.training.optim import build_optimizer


def test_the_fused_cpu_adamw_steps_as_the_unfused_one():
    config = TrainConfig.from_dict({"model": {"variant": "N-N/8"}, "optim": {"base_lr": 0.016, "warmup_steps": 0}})
    models = []
    unfused = dataclasses.replace(config, optim=dataclasses.replace(config.optim, fused_adamw=False))
    for run_config in (unfused, config):
        torch.manual_seed(0)
        model = ViTok.from_name("N-N/8", channels=4)
        optimizer, schedule = build_optimizer(model, run_config, torch.device("cpu"))
        assert optimizer.defaults["fused"] is run_config.optim.fused_adamw
        x = torch.rand(2, 1, 32, 32, 3) * 2 - 1
        for _ in range(3):
            loss = (model(x, sample=False).recon - x).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        models.append(model)
    # The two differ only in the order of rounding, which Adam's g / sqrt(v) magnifies where a gradient is near
    # zero: on an Intel Xeon one weight of 12,288 moved 2e-6 apart, 0.2% of one step (lr ~1e-3). So: every
    # weight within 1% of a step, and at most 0.1% of them outside rounding error. A wrong lr, beta or bias
    # correction moves every weight by a sizeable part of a step.
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters()):
        gap = (a - b).abs()
        assert gap.max() <= 1e-5, f"{name}: fused and unfused AdamW {gap.max():.2e} apart"
        beyond_rounding = (gap > 1e-6 + 1e-5 * b.abs()).float().mean()
        assert beyond_rounding <= 1e-3, f"{name}: {beyond_rounding:.2%} of the weights beyond rounding error"


PROBE = """
import resource, threading, torch
torch.set_num_threads(1)
faults = []
def step():  # in a thread, as Ray Train runs the training loop
    x = torch.rand(24_000_000)  # 96 MB: above glibc's mmap threshold and a thread arena's 64 MiB heap
    for _ in range(3):
        (x * 2).sum()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        (x * 2).sum()  # a fresh 96 MB temporary each time
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
thread = threading.Thread(target=step)
thread.start()
thread.join()
print(faults[0])
"""


def page_faults(env: dict[str, str]) -> int:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(proc.stdout.strip().splitlines()[-1])


def test_workers_keep_large_temporaries_in_the_heap():
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "LD_PRELOAD"}
    default, tuned = page_faults(base), page_faults({**base, **ALLOCATOR_ENV})
    assert default > 20 * 20_000  # glibc: each 96 MB temporary faults in ~23,400 fresh 4 KiB pages
    assert tuned < 20_000  # fewer than one temporary's pages over all 20 (measured here: none)


WORKER_PROBE = """
import ray
from data_prep.ray_session import connect_ray
connect_ray()

@ray.remote
def allocator():
    import os
    with open("/proc/self/maps") as maps:
        return any("libjemalloc" in line for line in maps), os.environ.get("MALLOC_CONF")

print(*ray.get(allocator.remote()))
"""


def test_every_ray_worker_of_a_job_runs_on_jemalloc():
    assert ALLOCATOR_ENV, "Ray's wheel ships no libjemalloc.so here"
    proc = subprocess.run([sys.executable, "-c", WORKER_PROBE], capture_output=True, text=True, cwd=REPO,
                          timeout=180)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", ALLOCATOR_ENV["MALLOC_CONF"]]
