"""A command rejected for a bad flag or a bad place is answered before the heavy imports: torch, MLflow,
DeepSpeed and Ray Data (seconds each in a fresh process) are not loaded when it exits 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO

HEAVY = ("torch", "mlflow", "deepspeed", "ray.data")

# Runs the command in this interpreter as `python ...` would, then prints the heavy modules it loaded.
PROBE = """
import runpy, sys
target, argv = sys.argv[1], sys.argv[2:]
sys.argv = [target, *argv]
try:
    if target.endswith(".py"):
        runpy.run_path(target, run_name="__main__")
    else:
        runpy.run_module(target, run_name="__main__", alter_sys=True)
except SystemExit as exit:
    print("exit", exit.code)
print("loaded", *[m for m in {heavy} if m in sys.modules])
""".format(heavy=HEAVY)


@pytest.mark.parametrize("target, args", [
    ("workflows/scale_sweep.py", ["--max-concurrent", "-1"]),
    ("workflows/scale_sweep.py", ["--best-by", "psnr"]),
    ("workflows/scale_sweep.py", ["--dry-run", "--shards", "nope"]),
    ("workflows/scale_sweep.py", ["--storage", "afile/ckpt"]),
    ("workflows/demo.py", ["--max-concurrent", "-1"]),
    ("workflows/demo.py", ["--storage", "afile/ckpt"]),
    ("workflows/train.py", ["--run", "a", "--config", "missing.yaml"]),
    ("workflows/train_generator.py", ["--latents", "lat", "--tokenizer", "afile", "--storage", "afile/ckpt"]),
    ("data_prep", ["sample-corpus", "--output", "afile/corpus"]),
    ("workflows/cache_latents.py", ["--shards", "nope", "--tokenizer", "tok", "--output", "lat"]),
    ("workflows/cache_latents.py", ["--shards", "nope", "--tokenizer", "tok", "--output", "lat", "--batch-size", "0"]),
])  # fmt: skip
def test_a_rejected_command_loads_no_heavy_module(tmp_path, target, args):
    (tmp_path / "afile").write_text("a file, not a folder")
    script = str(REPO / target) if target.endswith(".py") else target
    out = subprocess.run([sys.executable, "-c", PROBE, script, *args], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})  # fmt: skip
    lines = out.stdout.splitlines()
    assert lines[-2:] == ["exit 2", "loaded"], out.stdout + out.stderr
