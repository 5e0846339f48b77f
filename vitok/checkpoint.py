"""Checkpoint I/O: a directory with `model.safetensors` (weights) and `config.json` (ViTokConfig fields).

Kept free of the model class so that it stays a plain file format; `ViTok.save_pretrained` and
`ViTok.from_pretrained` are the front doors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def resolve_path(path: str | Path) -> Path:
    """Turn a checkpoint location into a local directory. Only local paths (or file:// URIs) for now."""
    text = str(path)
    if text.startswith("file://"):
        text = text[len("file://"):]
    elif "://" in text:
        raise ValueError(f"unsupported checkpoint location {text!r}: only local directories can be loaded")
    return Path(text).expanduser()


def save_checkpoint(directory: str | Path, config: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> Path:
    """Write weights and config into `directory` (created if needed); returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().contiguous().cpu() for name, t in state_dict.items()}
    save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return directory


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read (config dict, state dict on CPU) from a checkpoint directory."""
    directory = resolve_path(path)
    weights, config = directory / WEIGHTS_NAME, directory / CONFIG_NAME
    for needed in (weights, config):
        if not needed.is_file():
            raise FileNotFoundError(f"not a ViTok checkpoint: {needed} is missing")
    return json.loads(config.read_text()), load_file(str(weights), device="cpu")
