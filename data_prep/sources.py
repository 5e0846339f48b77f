"""Listing a corpus (a local folder, recursively, or s3://bucket/prefix) in a deterministic order.

An input is named by its URI: an absolute local path or s3://bucket/key. Everything downstream (unit ids,
sample ids, splits) hashes that string. Which files are candidates is decided here by name (media
extensions, --include / --exclude globs on the path relative to the root); which media type a candidate is
gets decided later by its content (media/sniff.py), when fingerprint.py reads it. A file with no extension at all
(content-addressed S3 keys have none) is a candidate too: only its content can say what it is. Every file
the listing passes over comes back with the reason, for the manifest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import os
import shutil
import tempfile
from collections.abc import Iterator

from data_prep import s3
from data_prep.errors import DataPrepError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v"})


@dataclasses.dataclass(frozen=True)
class InputFile:
    uri: str
    key: str  # the path relative to the input root (for s3://, the key under the prefix): what names it
    size: int  # bytes; -1 when the file could not be stat-ed (it is still an input and will be quarantined)
    version: str  # changes when the content may have: mtime_ns locally, the ETag on S3
    named_media: str | None  # the media type its extension promises; None: no extension, or only a glob chose it


@dataclasses.dataclass(frozen=True)
class Selection:
    include: tuple[str, ...] = ()  # globs on the relative path; a match makes any file a candidate
    exclude: tuple[str, ...] = ()  # globs on the relative path; a match drops the file

    def passed_over(self, rel: str) -> str | None:
        """Why the listing passes over the relative path `rel`; None when it is a candidate."""
        if any(fnmatch.fnmatchcase(rel, g) for g in self.exclude):
            return "matches an --exclude glob"
        if self.include:
            return None if any(fnmatch.fnmatchcase(rel, g) for g in self.include) else "matches no --include glob"
        ext = os.path.splitext(rel)[1].lower()
        if ext and media_type_of(rel) is None:
            return f"extension {ext} is not an image or video extension"
        return None


def media_type_of(name: str) -> str | None:
    ext = os.path.splitext(name)[1].lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    return None


def check_input(input_uri: str, settings: s3.S3Settings) -> str:
    """Return the input root (absolute path or normalised s3:// URI), or raise DataPrepError saying why."""
    if s3.is_s3(input_uri):
        bucket, prefix = s3.split_uri(input_uri)
        try:
            s3.client(settings).list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        except Exception as e:  # noqa: BLE001 - auth, DNS, missing bucket: all mean "cannot list"
            reason = " ".join(str(e).split())[:300]
            raise DataPrepError(f"input s3://{bucket}/{prefix}: cannot list ({reason})") from None
        return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    if "://" in input_uri:
        raise DataPrepError(f"input {input_uri}: unsupported URI scheme (local folders and s3:// only)")
    path = os.path.abspath(input_uri)
    if not os.path.exists(path):
        raise DataPrepError(f"input {path}: no such folder")
    if not os.path.isdir(path):
        raise DataPrepError(f"input {path}: not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise DataPrepError(f"input {path}: folder is not readable")
    return path


def list_candidates(
    root: str, selection: Selection, settings: s3.S3Settings
) -> tuple[list[InputFile], list[dict]]:
    """(candidates sorted by URI, files passed over as {"uri", "reason"} sorted by URI).

    Hidden files and folders (a name starting with ".") are not part of a corpus and are not listed at all.
    """
    found = _list_s3(root, settings) if s3.is_s3(root) else _list_local(root)
    candidates, passed_over = [], []
    for uri, size, version in found:
        rel = relative_key(root, uri)
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        reason = selection.passed_over(rel)
        if reason is None:
            file = InputFile(uri=uri, key=rel, size=size, version=version, named_media=media_type_of(rel))
            candidates.append(file)
        else:
            passed_over.append({"uri": uri, "reason": reason})
    candidates.sort(key=lambda f: f.uri)
    passed_over.sort(key=lambda p: p["uri"])
    return candidates, passed_over


def _list_local(root: str) -> Iterator[tuple[str, int, str]]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
                yield path, st.st_size, str(st.st_mtime_ns)
            except OSError:
                yield path, -1, "unreadable"  # dangling link or vanished: read fails later, and is quarantined


def _list_s3(root: str, settings: s3.S3Settings) -> Iterator[tuple[str, int, str]]:
    bucket, prefix = s3.split_uri(root)
    pages = s3.client(settings).get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""
    )
    for page in pages:
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith("/"):  # "folder" placeholder objects
                yield f"s3://{bucket}/{obj['Key']}", obj["Size"], obj["ETag"].strip('"')


def relative_key(root: str, uri: str) -> str:
    """The input's path inside its corpus: what splits hash, so a corpus keeps its split wherever it lives."""
    if s3.is_s3(root):
        return uri[len(root) :].lstrip("/")
    return os.path.relpath(uri, root).replace(os.sep, "/")


def iter_chunks(uri: str, settings: s3.S3Settings, chunk: int = 1 << 20) -> Iterator[bytes]:
    """The input's bytes in chunks (streamed: memory stays bounded by `chunk` for any file size)."""
    if s3.is_s3(uri):
        bucket, key = s3.split_uri(uri)
        yield from s3.client(settings).get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(chunk)
        return
    with open(uri, "rb") as f:
        while block := f.read(chunk):
            yield block


@contextlib.contextmanager
def local_path(uri: str, settings: s3.S3Settings) -> Iterator[str]:
    """A local file path for `uri`, valid inside the `with` block (decoders need a seekable file).

    S3 objects are downloaded to a temp file that keeps the key's extension (some demuxers use it as a
    hint) and is deleted on exit.
    """
    if not s3.is_s3(uri):
        yield uri
        return
    bucket, key = s3.split_uri(uri)
    with tempfile.NamedTemporaryFile(suffix=os.path.splitext(key)[1]) as tmp:
        body = s3.client(settings).get_object(Bucket=bucket, Key=key)["Body"]
        shutil.copyfileobj(body, tmp, 1 << 20)
        tmp.flush()
        yield tmp.name
