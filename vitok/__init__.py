"""ViTok: Vision-Transformer visual tokenizers for images and videos, in plain PyTorch."""

import importlib

# The names below load their modules (and torch, about a second) on first use rather than on `import vitok`,
# so a torch-free submodule such as `vitok.s3_endpoint` costs data prep's Ray actors no torch import.
_EXPORTS = {
    "SIZES": "config", "ViTokConfig": "config", "check_input_shape": "config",
    "ModelStats": "flops", "model_stats": "flops",
    "ViTok": "model", "ViTokOutput": "model",
}  # fmt: skip

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vitok' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
