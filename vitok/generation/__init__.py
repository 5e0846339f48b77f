"""The generation probe's model library: a DiT over tokenizer latents trained with flow matching, its samplers,
latent normalisation, and the multi-scale sliced Wasserstein distance (pure PyTorch, as the rest of vitok)."""

from .dit import DiT, DiTConfig
from .flops import DiTStats, dit_forward_macs, dit_stats
from .flow import euler, flow_matching_loss, guided_velocity, heun, interpolate, sample, velocity_target
from .latents import LatentStats
from .swd import PatchDescriptors, multiscale_swd, swd_between, swd_interval

__all__ = [
    "DiT", "DiTConfig", "DiTStats", "LatentStats", "PatchDescriptors", "dit_forward_macs", "dit_stats",
    "euler", "flow_matching_loss", "guided_velocity", "heun", "interpolate", "multiscale_swd", "sample",
    "swd_between", "swd_interval", "velocity_target",
]  # fmt: skip
