"""ViTok: Vision-Transformer visual tokenizers for images and videos, in plain PyTorch."""

from .config import SIZES, ViTokConfig, check_input_shape
from .flops import ModelStats, model_stats
from .model import ViTok, ViTokOutput

__all__ = ["SIZES", "ViTok", "ViTokConfig", "ViTokOutput", "ModelStats", "check_input_shape", "model_stats"]
