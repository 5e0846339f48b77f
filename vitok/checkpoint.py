"""Checkpoint I/O: a directory with `model.safetensors` (weights) and `config.json` (ViTokConfig fields).

Kept free of the model class so that it stays a plain file format; `ViTok.save_pretrained` and
`ViTok.from_pretrained` are the front doors. Locations may be local paths, `file://` URIs or `s3://` URIs;
S3 objects are copied once into a local cache through `pyarrow.fs.S3FileSystem` (vitok never imports boto3).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, load_file, save_file

from vitok.s3_endpoint import pyarrow_s3_options

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
# Where s3:// objects are copied to: <cache>/<bucket>/<key>.
DEFAULT_CACHE = Path("~/.cache/vitok/s3")


def s3_filesystem(endpoint_url: str | None = None):
    """A pyarrow S3FileSystem; endpoint and region as `vitok.s3_endpoint` resolves them, credentials from the
    default chain."""
    from pyarrow import fs  # imported here: pyarrow is only needed for s3:// locations

    return fs.S3FileSystem(**pyarrow_s3_options(endpoint_url))


def fetch_s3(uri: str, endpoint_url: str | None = None, cache_dir: str | Path | None = None) -> Path:
    """Copy an s3:// object, or every object under an s3:// prefix, into the cache; returns the local path.

    Files already in the cache with the same size are not copied again.
    """
    from pyarrow import fs

    s3 = s3_filesystem(endpoint_url)
    key = uri[len("s3://"):].strip("/")
    local = Path(cache_dir or DEFAULT_CACHE).expanduser() / key
    info = s3.get_file_info(key)
    if info.type == fs.FileType.File:
        pairs = [(info, local)]
    elif info.type == fs.FileType.Directory:
        found = s3.get_file_info(fs.FileSelector(key, recursive=True))
        pairs = [(f, local / Path(f.path).relative_to(key)) for f in found if f.type == fs.FileType.File]
    else:
        raise FileNotFoundError(f"nothing at {uri}")
    for remote, target in pairs:
        if target.is_file() and target.stat().st_size == remote.size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")  # renamed when complete: no torn files in the cache
        with s3.open_input_stream(remote.path) as src, open(partial, "wb") as dst:
            while chunk := src.read(1 << 24):
                dst.write(chunk)
        partial.replace(target)
    return local


def resolve_path(path: str | Path, endpoint_url: str | None = None) -> Path:
    """Turn a location (local path, file:// or s3:// URI) into a local path, fetching from S3 if needed."""
    text = str(path)
    if text.startswith("file://"):
        text = text[len("file://"):]
    elif text.startswith("s3://"):
        return fetch_s3(text, endpoint_url)
    elif "://" in text:
        raise ValueError(f"unsupported checkpoint location {text!r}: use a local path, file:// or s3://")
    return Path(text).expanduser()


def save_checkpoint(directory: str | Path, config: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> Path:
    """Write weights and config into `directory` (created if needed); returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().contiguous().cpu() for name, t in state_dict.items()}
    save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return directory


def load_checkpoint(
    path: str | Path, endpoint_url: str | None = None
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read (config dict, state dict on CPU) from a checkpoint directory (local, file:// or s3://)."""
    directory = resolve_path(path, endpoint_url)
    weights, config = directory / WEIGHTS_NAME, directory / CONFIG_NAME
    for needed in (weights, config):
        if not needed.is_file():
            raise FileNotFoundError(f"not a ViTok checkpoint: {needed} is missing")
    return json.loads(config.read_text()), load_file(str(weights), device="cpu")


def checkpoint_from_files(files: dict[str, bytes]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config dict, state dict on CPU) from the bytes of a checkpoint's two files, {WEIGHTS_NAME: ...,
    CONFIG_NAME: ...}, as a process that received them (a Ray actor) holds them: nothing goes through disk."""
    for needed in (WEIGHTS_NAME, CONFIG_NAME):
        if needed not in files:
            raise FileNotFoundError(f"not a ViTok checkpoint: {needed} is missing")
    return json.loads(files[CONFIG_NAME]), load(files[WEIGHTS_NAME])


def load_state_dict(path: str | Path, endpoint_url: str | None = None) -> dict[str, torch.Tensor]:
    """A bare state dict from a `.safetensors` or torch `.pt`/`.pth` file (local, file:// or s3://)."""
    local = resolve_path(path, endpoint_url)
    if not local.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    if local.suffix == ".safetensors":
        return load_file(str(local), device="cpu")
    return torch.load(str(local), map_location="cpu", weights_only=True)
