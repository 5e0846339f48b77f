"""The weights training starts from: DeepSpeed builds its fp32 masters from the module after casting it to bf16,
so without `build_engine` they would start bf16-rounded (stage 2 would not start from the fp32 stage-1 export).
For every ZeRO stage, in bf16, the masters (and the frozen encoder's values) read back exactly as the fp32
weights the engine was given. Run in a subprocess: one rank, gloo, on this process's loopback."""

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
from vitok import ViTok
from workflows.config import TrainConfig
from workflows.training.weights import fp32_parameters, master_state
from workflows.training.worker import build_engine

deepspeed.init_distributed(dist_backend="gloo")
for stage in (0, 1, 2, 3):
    config = TrainConfig.from_dict({"model": {"variant": "N-N/8", "channels": 8},
                                    "train": {"micro_batch_size": 2, "num_workers": 1, "zero_stage": stage,
                                              "precision": "bf16"}})
    torch.manual_seed(stage)
    model = ViTok.from_name("N-N/8", channels=8)
    model.freeze_encoder()
    expected = fp32_parameters(model)
    rounded = sum(not torch.equal(w, w.bfloat16().float()) for w in expected.values())
    engine, _, frozen = build_engine(config, model, torch.device("cpu"), 1)
    assert all(p.dtype == torch.bfloat16 for p in engine.module.parameters()), "not a bf16 engine"
    state = master_state(engine, frozen, stage)
    wrong = [name for name, w in expected.items() if not torch.equal(state[name], w)]
    print(stage, rounded, len(frozen), len(wrong), *wrong[:3])
"""


def test_training_starts_from_the_exact_fp32_weights_at_every_zero_stage():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", PROBE, "29617"], capture_output=True, text=True, cwd=REPO,
                          timeout=300, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split() for line in proc.stdout.splitlines() if line[:1].isdigit()]
    assert [row[0] for row in rows] == ["0", "1", "2", "3"], proc.stdout
    for stage, rounded, frozen, wrong, *names in rows:
        assert int(rounded) > 10, "the weights must differ from their bf16 rounding, or the test shows nothing"
        assert int(frozen) > 0, f"stage {stage}: the frozen encoder is not kept aside"
        assert wrong == "0", f"ZeRO-{stage}: masters differ from the fp32 weights: {names}"
