"""A JIT-build lock left by a killed build is removed before the engine is built (else torch waits on it
forever); a lock young enough to belong to a build in progress is kept."""

import os
import time

from workflows.training.extension_locks import STALE_AFTER_S, remove_stale_build_locks


def test_stale_locks_go_and_fresh_ones_stay(tmp_path):
    stale = tmp_path / "deepspeed_shm_comm" / "lock"  # TORCH_EXTENSIONS_DIR's layout
    nested = tmp_path / "py311_cpu" / "deepspeed_shm_comm" / "lock"  # torch's default root's layout
    fresh = tmp_path / "other_op" / "lock"
    for lock in (stale, nested, fresh):
        lock.parent.mkdir(parents=True)
        lock.touch()
    old = time.time() - STALE_AFTER_S - 60
    for lock in (stale, nested):
        os.utime(lock, (old, old))
    assert sorted(remove_stale_build_locks(str(tmp_path))) == sorted([str(stale), str(nested)])
    assert not stale.exists() and not nested.exists() and fresh.exists()
    assert remove_stale_build_locks(str(tmp_path)) == []
