"""JIT-build locks before the engine is built: one left by a killed build is removed once stale (else torch
waits on it forever); a fresh one is waited for, and is either removed by its build or, once it is stale, here."""

import os
import threading
import time

from workflows.training.extension_locks import STALE_AFTER_S, settle_build_locks


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
