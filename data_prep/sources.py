"""Listing a corpus: which files are inputs, of which media type, in a deterministic order.

Only local folders are read today. An input is named by its URI (an absolute local path); everything
downstream (unit ids, sample ids, splits) hashes that string, so a source for another scheme only has to
produce URIs and a way to open them (`local_path`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator

from data_prep.errors import DataPrepError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v"})


@dataclasses.dataclass(frozen=True)
class InputFile:
    uri: str
    media_type: str  # "image" or "video"
    size: int  # bytes


@dataclasses.dataclass(frozen=True)
class Listing:
    inputs: list[InputFile]
    ignored: int  # files seen that are not images or videos (by extension); not counted as inputs


def media_type_of(name: str) -> str | None:
    ext = os.path.splitext(name)[1].lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    return None


def check_input(input_uri: str) -> str:
    """Return the input root as an absolute path, or raise DataPrepError saying why it cannot be read."""
    if "://" in input_uri:
        raise DataPrepError(f"input {input_uri}: unsupported URI scheme (local folders only)")
    path = os.path.abspath(input_uri)
    if not os.path.exists(path):
        raise DataPrepError(f"input {path}: no such folder")
    if not os.path.isdir(path):
        raise DataPrepError(f"input {path}: not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise DataPrepError(f"input {path}: folder is not readable")
    return path


def list_inputs(root: str) -> Listing:
    """All image/video files under `root`, sorted by URI; hidden files and folders are skipped."""
    inputs: list[InputFile] = []
    ignored = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            path = os.path.join(dirpath, name)
            mt = media_type_of(name)
            if mt is None:
                ignored += 1
                continue
            try:
                size = os.stat(path).st_size
            except OSError:
                size = -1  # vanished or unreadable: it is still an input, and decode will quarantine it
            inputs.append(InputFile(uri=path, media_type=mt, size=size))
    inputs.sort(key=lambda f: f.uri)
    return Listing(inputs=inputs, ignored=ignored)


def relative_key(root: str, uri: str) -> str:
    """The input's path inside its corpus: what splits hash, so a corpus keeps its split wherever it lives."""
    return os.path.relpath(uri, root).replace(os.sep, "/")


@contextlib.contextmanager
def local_path(uri: str) -> Iterator[str]:
    """A local file path for `uri`, valid inside the `with` block (decoders need a path or a file)."""
    yield uri
