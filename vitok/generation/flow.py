"""Flow matching with the rectified-flow (linear) path, as SiT (Ma et al. 2024), and its ODE samplers.

Convention (SiT's "linear" interpolant): t = 0 is data, t = 1 is noise,

    x_t = (1 - t) * x0 + t * noise,        velocity v = d x_t / d t = noise - x0,

t ~ U(0, 1) in training, and the model regresses v with a plain MSE. Sampling integrates dx/dt = v(x, t) from
t = 1 (pure noise) down to t = 0 with Euler (one model call per step) or Heun (two calls per step, second order).

Classifier-free guidance: labels are replaced by the null class with probability `class_dropout` in training;
at sampling v = v(x, t, null) + s * (v(x, t, y) - v(x, t, null)), so s = 1 is the plain conditional model and
s = 0 the unconditional one.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

# A velocity field: (x (B, ...), t (B,)) -> dx/dt, shaped like x.
Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _per_sample(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) to broadcast over the non-batch axes of `like`."""
    return t.reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


def interpolate(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t noise, with t (B,) per sample."""
    t = _per_sample(t, x0)
    return (1 - t) * x0 + t * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """d x_t / d t along the linear path: noise - x0 (constant in t)."""
    return noise - x0


def drop_labels(
    y: torch.Tensor, null_class: int, prob: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Replace each label by `null_class` with probability `prob` (classifier-free guidance training)."""
    drop = torch.rand(y.shape, device=y.device, generator=generator) < prob
    return torch.where(drop, torch.full_like(y, null_class), y)


def flow_matching_loss(
    model: nn.Module,
    x0: torch.Tensor,
    y: torch.Tensor | None = None,
    null_class: int | None = None,
    class_dropout: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """MSE between the model's velocity at a random point of the path and noise - x0 (a scalar tensor).

    model: called as model(x_t, t, y), so a DDP / DeepSpeed / compiled wrapper works as well as the DiT.
    x0: normalised latents (B, T', H', W', c); y: labels (B,) for a class-conditional model, None for an
    unconditional one; null_class: the DiT's `config.null_class`; class_dropout: probability of training a
    sample as the null class (DiT and SiT use 0.1). t ~ U(0, 1) and the noise are drawn here, from
    `generator` when given (it must live on x0's device).
    """
    noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
    t = torch.rand(x0.shape[0], device=x0.device, generator=generator)
    if y is not None and class_dropout > 0:
        if null_class is None:
            raise ValueError("label dropout needs the null class: pass null_class=model.config.null_class")
        y = drop_labels(y, null_class, class_dropout, generator)
    prediction = model(interpolate(x0, noise, t), t, y)
    return F.mse_loss(prediction.float(), velocity_target(x0, noise).float())


def guided_velocity(
    model: nn.Module, y: torch.Tensor | None = None, cfg_scale: float = 1.0, null_class: int | None = None
) -> Velocity:
    """The velocity field that sampling integrates: the model at labels y, with classifier-free guidance.

    cfg_scale 1 (or an unconditional model, y None) calls the model once per step; any other scale runs the
    conditional and null-class (`null_class`, the DiT's `config.null_class`) batches together, in one call
    of twice the batch.
    """
    if y is None:
        if cfg_scale != 1.0:
            raise ValueError("classifier-free guidance needs labels: an unconditional model samples at cfg_scale 1")
        return lambda x, t: model(x, t, None)
    if cfg_scale == 1.0:
        return lambda x, t: model(x, t, y)
    if null_class is None:
        raise ValueError("classifier-free guidance needs the null class: pass null_class=model.config.null_class")
    null = torch.full_like(y, null_class)

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]))  # (2B, ...)
        conditional, unconditional = both.chunk(2)
        return unconditional + cfg_scale * (conditional - unconditional)

    return velocity


def time_grid(steps: int, device: torch.device | None = None) -> torch.Tensor:
    """steps + 1 equally spaced times from 1 (noise) to 0 (data), fp32."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return torch.linspace(1.0, 0.0, steps + 1, device=device)


def euler(velocity: Velocity, x: torch.Tensor, steps: int) -> torch.Tensor:
    """Integrate dx/dt = velocity(x, t) from t = 1 to t = 0 in `steps` Euler steps (one call each)."""
    times = time_grid(steps, x.device)
    for t, t_next in zip(times[:-1], times[1:]):
        x = x + (t_next - t) * velocity(x, t.expand(x.shape[0]))
    return x


def heun(velocity: Velocity, x: torch.Tensor, steps: int) -> torch.Tensor:
    """Integrate dx/dt = velocity(x, t) from t = 1 to t = 0 in `steps` Heun steps (explicit trapezoid, two calls
    each): an Euler predictor, then the mean of the slopes at both ends. Second order; exact when the velocity
    is affine in t along the path."""
    times = time_grid(steps, x.device)
    for t, t_next in zip(times[:-1], times[1:]):
        dt = t_next - t
        slope = velocity(x, t.expand(x.shape[0]))
        predicted = x + dt * slope
        x = x + dt * 0.5 * (slope + velocity(predicted, t_next.expand(x.shape[0])))
    return x


SAMPLERS = {"euler": euler, "heun": heun}


@torch.no_grad()
def sample(
    model: nn.Module,
    noise: torch.Tensor,
    y: torch.Tensor | None = None,
    steps: int = 50,
    method: str = "heun",
    cfg_scale: float = 1.0,
    null_class: int | None = None,
) -> torch.Tensor:
    """Latents generated from `noise` (B, T', H', W', c): the model's flow integrated from t = 1 to 0.

    The result is in the normalised latent space the model was trained in; `LatentStats.denormalize` maps it
    back to the tokenizer's latents for `ViTok.decode`. Model calls: steps (euler) or 2 * steps (heun), each on
    twice the batch when cfg_scale != 1.
    """
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler {method!r}: choose one of {sorted(SAMPLERS)}")
    return SAMPLERS[method](guided_velocity(model, y, cfg_scale, null_class), noise, steps)
