"""DeepSpeed's JIT-built CPU op. Locks before the engine is built: one left by a killed build is removed once stale
(else torch waits on it forever); a fresh one is waited for, and is either removed by its build or, once it is
stale, here. The ninja: a process started without the venv on PATH loads the op the venv's ninja built instead
of rebuilding it with another."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.helpers import REPO, free_port
from workflows.training.jit_build import STALE_AFTER_S, extensions_root, settle_build_locks, use_the_environments_ninja


def make_lock(path, age_s: float = 0.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_stale_locks_go_at_once(tmp_path):
    stale = make_lock(tmp_path / "deepspeed_shm_comm" / "lock", STALE_AFTER_S + 60)  # TORCH_EXTENSIONS_DIR's layout
    nested = make_lock(tmp_path / "py311_cpu" / "deepspeed_shm_comm" / "lock", STALE_AFTER_S + 60)  # torch's default
    assert sorted(settle_build_locks(str(tmp_path))) == sorted([str(stale), str(nested)])
    assert not stale.exists() and not nested.exists()
    assert settle_build_locks(str(tmp_path)) == []


def test_a_fresh_lock_is_waited_for_until_its_build_removes_it(tmp_path):
    fresh = make_lock(tmp_path / "other_op" / "lock")
    threading.Timer(0.5, fresh.unlink).start()  # the build in progress finishes
    start = time.monotonic()
    assert settle_build_locks(str(tmp_path), stale_after_s=30, poll_s=0.05) == []
    assert 0.4 < time.monotonic() - start < 10


def test_a_fresh_lock_whose_build_was_killed_goes_once_it_is_stale(tmp_path):
    orphan = make_lock(tmp_path / "deepspeed_shm_comm" / "lock")  # killed just now: nobody will remove it
    start = time.monotonic()
    assert settle_build_locks(str(tmp_path), stale_after_s=1.0, poll_s=0.05) == [str(orphan)]
    assert not orphan.exists() and 0.9 < time.monotonic() - start < 10


def test_the_ninja_beside_the_python_goes_first_on_path(tmp_path, monkeypatch):
    bin_folder = tmp_path / "venv" / "bin"
    bin_folder.mkdir(parents=True)
    (bin_folder / "ninja").write_text("#!/bin/sh\n")
    (bin_folder / "ninja").chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join(["/usr/bin", str(bin_folder), "/bin"]))
    assert use_the_environments_ninja(str(bin_folder / "python")) == str(bin_folder / "ninja")
    assert os.environ["PATH"].split(os.pathsep) == [str(bin_folder), "/usr/bin", "/bin"]
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert use_the_environments_ninja(str(tmp_path / "bare" / "python")) is None  # no ninja there: PATH kept
    assert os.environ["PATH"] == "/usr/bin:/bin"


# What a Ray Train worker does: torch.distributed set up (Ray Train's part), then the engine built.
WORKER = """
import os, sys
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[1], RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
import torch
from vitok import ViTok
from workflows.config import TrainConfig
from workflows.training.worker import build_engine

torch.distributed.init_process_group("gloo")
config = TrainConfig.from_dict({"model": {"variant": "N-N/8", "channels": 4},
                                "train": {"micro_batch_size": 2, "num_workers": 1, "precision": "fp32"}})
build_engine(config, ViTok.from_name("N-N/8", channels=4), torch.device("cpu"), 1)
"""


def test_a_worker_started_without_the_venv_on_path_loads_the_built_op_without_rebuilding_it():
    library = Path(extensions_root()) / "deepspeed_shm_comm" / "deepspeed_shm_comm.so"

    def run(code: str, path: str) -> None:
        proc = subprocess.run([sys.executable, "-c", code, str(free_port())], cwd=REPO, capture_output=True,
                              text=True, timeout=600, env={**os.environ, "PATH": path, "DS_ACCELERATOR": "cpu"})
        assert proc.returncode == 0, proc.stderr[-3000:]

    # Built as `make install` builds it (a no-op when it is built).
    run("from workflows.training.jit_build import build_deepspeed_cpu_op; build_deepspeed_cpu_op()", "/usr/bin:/bin")
    built = library.stat().st_mtime_ns
    run(WORKER, "/usr/bin:/bin")  # as a node started from a shell without the venv: the system's ninja, if any, first
    assert library.stat().st_mtime_ns == built, "the worker rebuilt the op"
