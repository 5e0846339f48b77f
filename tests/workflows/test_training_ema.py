"""The EMA of the weights without per-step gathers: each rank averages the fp32 masters it owns, and the average
gathered at the end equals, to the bit, the average of the gathered masters taken after every step (how the EMA
was kept before). Two ranks over gloo on this machine's loopback, bf16 at every ZeRO stage and fp32 at ZeRO-0;
a checkpoint's whole average loaded back into a fresh EMA reads back the same."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import REPO, free_port

PROBE = """
import os, sys
rank, port = sys.argv[1], sys.argv[2]
os.environ.update(DS_ACCELERATOR="cpu", MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK=rank, WORLD_SIZE="2",
                  LOCAL_RANK=rank)
import deepspeed, torch
from vitok import ViTok
from workflows.config import TrainConfig
from workflows.training.evaluation import pixels_to_model_input
from workflows.training.weights import WeightEMA, master_state
from workflows.training.worker import build_engine

deepspeed.init_distributed(dist_backend="gloo")
torch.manual_seed(int(rank))
for stage, precision in ((0, "fp32"), (0, "bf16"), (1, "bf16"), (2, "bf16"), (3, "bf16")):
    config = TrainConfig.from_dict({"model": {"variant": "N-N/8", "channels": 8},
                                    "optim": {"warmup_steps": 0, "base_lr": 0.5},
                                    "train": {"micro_batch_size": 2, "num_workers": 2, "zero_stage": stage,
                                              "precision": precision}})
    torch.manual_seed(0)
    model = ViTok.from_name("N-N/8", channels=8)
    model.decoder.requires_grad_(True)
    model.freeze_encoder()
    engine, _, frozen = build_engine(config, model, torch.device("cpu"), 2)
    ema = WeightEMA(0.9, engine, frozen, stage)
    reference = master_state(engine, frozen, stage)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    for _ in range(3):
        target = pixels_to_model_input(torch.randint(0, 256, (2, 1, 32, 32, 3), dtype=torch.uint8), torch.device("cpu"))
        engine.backward(torch.nn.functional.mse_loss(engine(target.to(dtype), sample=False).recon.float(), target))
        engine.step()
        ema.update()
        for name, value in master_state(engine, frozen, stage).items():
            if name not in frozen:
                reference[name].lerp_(value, 0.1)
    averaged = ema.full_state()
    weights = master_state(engine, frozen, stage)
    unequal = [name for name in reference if not torch.equal(averaged[name], reference[name])]
    moved = sum(not torch.equal(averaged[name], weights[name]) for name in weights if name not in frozen)
    fresh = WeightEMA(0.9, engine, frozen, stage)
    fresh.load_full_state(averaged)
    reloaded = fresh.full_state()
    lost = [name for name in averaged if not torch.equal(reloaded[name], averaged[name])]
    kept = all(torch.equal(w, weights[name]) for name, w in master_state(engine, frozen, stage).items())
    print("row", stage, precision, len(unequal), moved, len(lost), kept, *unequal[:2], *lost[:2])
"""


def test_partition_ema_equals_the_ema_of_gathered_weights():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    port = str(free_port())
    ranks = [subprocess.Popen([sys.executable, "-c", PROBE, str(rank), port], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=REPO, env=env) for rank in (0, 1)]  # fmt: skip
    outputs = [rank.communicate(timeout=600) for rank in ranks]
    for rank, (out, err) in zip(ranks, outputs):
        assert rank.returncode == 0, err[-3000:]
    for out, _ in outputs:
        rows = [line.split()[1:] for line in out.splitlines() if line.startswith("row ")]
        assert [row[:2] for row in rows] == [["0", "fp32"], ["0", "bf16"], ["1", "bf16"], ["2", "bf16"],
                                             ["3", "bf16"]], out  # fmt: skip
        for stage, precision, unequal, moved, lost, kept, *names in rows:
            assert unequal == "0", f"ZeRO-{stage} {precision}: EMA differs from the gathered one: {names}"
            assert int(moved) > 0, f"ZeRO-{stage} {precision}: the EMA equals the weights, so the test shows nothing"
            assert lost == "0", f"ZeRO-{stage} {precision}: a reloaded EMA differs: {names}"
            assert kept == "True", f"ZeRO-{stage} {precision}: reading the EMA changed the weights"
