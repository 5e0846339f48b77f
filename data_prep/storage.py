"""The output folder: atomic writes and reads of the files data_prep produces.

Every file becomes visible whole or not at all (write to a temp name in the same folder, fsync, rename),
so a reader or a rerun after kill -9 never sees a half-written shard or record.
"""

from __future__ import annotations

import os
import uuid

from data_prep.errors import DataPrepError


class LocalStore:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def exists(self, rel: str) -> bool:
        return os.path.isfile(self.path(rel))

    def read_bytes(self, rel: str) -> bytes:
        with open(self.path(rel), "rb") as f:
            return f.read()

    def list(self, folder: str, suffix: str) -> list[str]:
        """Relative paths of the files in `folder` that end in `suffix`, sorted (temp files never match)."""
        try:
            names = os.listdir(self.path(folder))
        except FileNotFoundError:
            return []
        return sorted(f"{folder}/{n}" for n in names if n.endswith(suffix) and not n.startswith("."))

    def write_atomic(self, rel: str, data: bytes) -> None:
        final = self.path(rel)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        # Hidden, unique temp name: concurrent writers never collide and listings skip it.
        tmp = os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def check_output(output: str) -> LocalStore:
    """Create the output folder if needed and prove it writable, or raise DataPrepError saying why."""
    if "://" in output:
        raise DataPrepError(f"output {output}: unsupported URI scheme (local folders only)")
    path = os.path.abspath(output)
    if os.path.exists(path) and not os.path.isdir(path):
        raise DataPrepError(f"output {path}: exists and is not a folder")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write-probe-{uuid.uuid4().hex}")
        with open(probe, "wb"):
            pass
        os.unlink(probe)
    except OSError as e:
        raise DataPrepError(f"output {path}: not writable ({e.strerror or type(e).__name__})") from None
    return LocalStore(path)
