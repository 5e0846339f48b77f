"""The output location: atomic writes and reads of the files data_prep produces, on a folder or in S3.

Every file becomes visible whole or not at all, so a reader or a rerun after kill -9 never sees a
half-written shard or record: locally by writing a temp name in the same folder, fsync, rename; on S3 by
one PUT per object (S3 never exposes a partial PUT).
"""

from __future__ import annotations

import os
import uuid

from data_prep import s3
from data_prep.errors import DataPrepError


class LocalStore:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)

    def uri(self, rel: str) -> str:
        return self.path(rel)

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


class S3Store:
    """The same interface as LocalStore over s3://bucket/prefix; `root` is that URI."""

    def __init__(self, root: str, settings: s3.S3Settings):
        self.bucket, self.prefix = s3.split_uri(root)
        self.root = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self.settings = settings

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def uri(self, rel: str) -> str:
        return f"s3://{self.bucket}/{self._key(rel)}"

    def exists(self, rel: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            s3.client(self.settings).head_object(Bucket=self.bucket, Key=self._key(rel))
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def read_bytes(self, rel: str) -> bytes:
        return s3.client(self.settings).get_object(Bucket=self.bucket, Key=self._key(rel))["Body"].read()

    def list(self, folder: str, suffix: str) -> list[str]:
        pages = s3.client(self.settings).get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(folder) + "/"
        )
        cut = len(self.prefix) + 1 if self.prefix else 0
        keys = (o["Key"][cut:] for page in pages for o in page.get("Contents", []))
        return sorted(k for k in keys if k.endswith(suffix))

    def write_atomic(self, rel: str, data: bytes) -> None:
        s3.client(self.settings).put_object(Bucket=self.bucket, Key=self._key(rel), Body=data)


Store = LocalStore | S3Store


def open_store(root: str, settings: s3.S3Settings) -> Store:
    """The store for an already checked output root (used by workers, which must not re-check)."""
    return S3Store(root, settings) if s3.is_s3(root) else LocalStore(root)


def check_output(output: str, settings: s3.S3Settings | None = None) -> Store:
    """Create the output folder if needed and prove it writable, or raise DataPrepError saying why."""
    if s3.is_s3(output):
        return _check_s3_output(output, settings or s3.S3Settings())
    if "://" in output:
        raise DataPrepError(f"output {output}: unsupported URI scheme (local folders and s3:// only)")
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


def _check_s3_output(output: str, settings: s3.S3Settings) -> S3Store:
    store = S3Store(output, settings)
    probe = f".write-probe-{uuid.uuid4().hex}"
    try:
        store.write_atomic(probe, b"")
        s3.client(settings).delete_object(Bucket=store.bucket, Key=store._key(probe))
    except Exception as e:  # noqa: BLE001 - botocore raises many types (auth, DNS, bucket); all mean "unusable"
        raise DataPrepError(f"output {store.root}: not writable ({_one_line(e)})") from None
    return store


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300] or type(e).__name__
