"""Fingerprinting candidates: the sha256 of their bytes (for dedup) and their media type by content.

Every candidate is read once here, in the driver, with a small thread pool (hashing and S3 GETs release
the GIL): on S3 one file per task, many in flight, to hide each GET's latency; local files in groups, on at
most one thread per core, since reading and hashing a small local file takes less time than handing a task
to a thread and the threads' contention for the GIL (bench/data/prep_unit_costs.py's driver stages).
Fingerprints already stored in committed unit records are reused when the file's size and
version (mtime / ETag) are unchanged, so a rerun or an incremental run only reads files it has not seen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

from data_prep import s3
from data_prep.media.sniff import HEADER_BYTES, sniff
from data_prep.sources import InputFile, iter_chunks

READ_THREADS = 8  # I/O bound: enough to hide S3 latency, few enough not to crowd a small driver node
LOCAL_GROUP = 256  # local files per task


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    sha256: str | None  # None when the file could not be read
    sniffed: str | None  # "image", "video" or None (not media, or unreadable)
    error: str | None = None  # "ErrorType: message" when reading failed

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


CacheKey = tuple[str, int, str]  # (uri, size, version)


def cache_key(f: InputFile) -> CacheKey:
    return (f.uri, f.size, f.version)


def fingerprint_all(
    files: list[InputFile], settings: s3.S3Settings, cache: dict[CacheKey, Fingerprint]
) -> dict[str, Fingerprint]:
    """uri -> Fingerprint for every file, reading only those not in `cache`."""
    out = {f.uri: cache[cache_key(f)] for f in files if cache_key(f) in cache}
    todo = [f for f in files if f.uri not in out]
    if todo and s3.is_s3(todo[0].uri):
        groups, threads = [[f] for f in todo], READ_THREADS
    else:
        groups = [todo[i : i + LOCAL_GROUP] for i in range(0, len(todo), LOCAL_GROUP)]
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = min(READ_THREADS, cores)
    with ThreadPoolExecutor(threads) as pool:
        for group, prints in zip(groups, pool.map(lambda g: [_fingerprint(f, settings) for f in g], groups)):
            out.update((f.uri, fp) for f, fp in zip(group, prints))
    return out


def _fingerprint(f: InputFile, settings: s3.S3Settings) -> Fingerprint:
    h = hashlib.sha256()
    head = b""
    try:
        for block in iter_chunks(f.uri, settings):
            if len(head) < HEADER_BYTES:
                head += block[: HEADER_BYTES - len(head)]
            h.update(block)
    except Exception as e:  # noqa: BLE001 - missing file, permissions, S3 errors: all mean "cannot read"
        msg = " ".join(str(e).split())[:300]
        return Fingerprint(sha256=None, sniffed=None, error=f"{type(e).__name__}: {msg}")
    return Fingerprint(sha256=h.hexdigest(), sniffed=sniff(head))
