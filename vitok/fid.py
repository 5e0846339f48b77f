"""rFID and rFVD: Frechet distance between feature statistics of inputs and their reconstructions.

The feature networks (InceptionV3 for FID, I3D for FVD) cannot be downloaded here, so they are TorchScript
files given by path (local, file:// or s3://), e.g. StyleGAN's `inception-2015-12-05.pt` and StyleGAN-V's
`i3d_torchscript.pt`. Both are called on float pixels in [0, 255]: images as (N, 3, H, W), clips as
(N, 3, T, H, W), with keyword arguments (by default those two files' `return_features=True`, plus
`rescale=True, resize=True` for I3D), and return (N, F) features. With no path configured the loaders return
None and `rfid` / `rfvd` return None: the metric is "not computed", never a made-up number.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

INCEPTION_KWARGS = {"return_features": True}
I3D_KWARGS = {"rescale": True, "resize": True, "return_features": True}


def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), in float64.

    tr((S1 S2)^(1/2)) = tr((A S2 A)^(1/2)) with A = S1^(1/2): A S2 A is symmetric PSD, so its square root's
    trace is the sum of the square roots of its eigenvalues, which avoids the complex sqrtm of a
    non-symmetric product that the usual SciPy recipe needs.
    """
    mu1, mu2, sigma1, sigma2 = (t.detach().to(torch.float64).cpu() for t in (mu1, mu2, sigma1, sigma2))
    evals, evecs = torch.linalg.eigh(sigma1)
    root1 = (evecs * evals.clamp(min=0).sqrt()) @ evecs.T
    middle = root1 @ sigma2 @ root1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    return float((mu1 - mu2).pow(2).sum() + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt)


@dataclass
class FeatureStats:
    """Running mean and covariance of streamed (N, F) features, accumulated in float64."""

    count: int = 0  # features seen
    total: torch.Tensor | None = field(default=None, repr=False)  # (F,) sum of features
    outer: torch.Tensor | None = field(default=None, repr=False)  # (F, F) sum of outer products

    def update(self, features: torch.Tensor) -> None:
        f = features.detach().to(torch.float64).cpu().flatten(1)
        if self.total is None:
            self.total, self.outer = f.new_zeros(f.shape[1]), f.new_zeros(f.shape[1], f.shape[1])
        self.count += f.shape[0]
        self.total += f.sum(0)
        self.outer += f.T @ f

    def mean_cov(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean (F,), unbiased covariance (F, F)), as numpy.cov computes them."""
        if self.count < 2:
            raise ValueError(f"need at least 2 features for a covariance, have {self.count}")
        mean = self.total / self.count
        cov = (self.outer - self.count * torch.outer(mean, mean)) / (self.count - 1)
        return mean, cov


class FeatureExtractor(nn.Module):
    """Wraps a feature network: (B, T, H, W, 3) in [-1, 1] -> (N, F) fp32 features.

    `video=False`: frames are folded into the batch (N = B*T, one feature per frame, as rFID on clips);
    `video=True`: one feature per clip (N = B), the network gets (B, 3, T, H, W).
    """

    def __init__(self, net: nn.Module, video: bool, call_kwargs: dict[str, Any] | None = None):
        super().__init__()
        self.net, self.video = net.eval(), video
        self.call_kwargs = dict(call_kwargs or {})

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[-1] != 3:
            raise ValueError(f"expected (B, T, H, W, 3), got {tuple(x.shape)}")
        pixels = ((x.float().clamp(-1, 1) + 1) * 127.5)
        if self.video:
            pixels = pixels.permute(0, 4, 1, 2, 3)  # (B, 3, T, H, W)
        else:
            pixels = pixels.flatten(0, 1).permute(0, 3, 1, 2)  # (B*T, 3, H, W)
        return self.net(pixels, **self.call_kwargs).float().flatten(1)


def _load(path: str | Path | None, video: bool, call_kwargs: dict[str, Any], endpoint_url: str | None):
    if not path:
        return None
    from .checkpoint import resolve_path

    local = resolve_path(path, endpoint_url)
    if not local.is_file():
        raise FileNotFoundError(f"no TorchScript feature network at {path}")
    with warnings.catch_warnings():  # torch 2.10+ warns that jit is deprecated; these files are TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        net = torch.jit.load(str(local), map_location="cpu")
    return FeatureExtractor(net, video, call_kwargs)


def load_inception(
    path: str | Path | None, call_kwargs: dict[str, Any] | None = None, endpoint_url: str | None = None
) -> FeatureExtractor | None:
    """InceptionV3 (FID) TorchScript feature extractor, or None when no path is configured."""
    return _load(path, False, INCEPTION_KWARGS if call_kwargs is None else call_kwargs, endpoint_url)


def load_i3d(
    path: str | Path | None, call_kwargs: dict[str, Any] | None = None, endpoint_url: str | None = None
) -> FeatureExtractor | None:
    """I3D (FVD) TorchScript feature extractor, or None when no path is configured."""
    return _load(path, True, I3D_KWARGS if call_kwargs is None else call_kwargs, endpoint_url)


@torch.no_grad()
def reconstruction_fd(
    model: nn.Module, batches: Iterable[torch.Tensor], extractor: FeatureExtractor | None
) -> float | None:
    """Frechet distance between features of the inputs and of `model`'s reconstructions (mean latent).

    `batches` yields (B, T, H, W, 3) pixels in [-1, 1]; the model is run in eval mode and its training mode
    restored afterwards. Returns None ("not computed") without an extractor.
    """
    if extractor is None:
        return None
    real, fake = FeatureStats(), FeatureStats()
    was_training = model.training
    model.eval()
    try:
        for x in batches:
            real.update(extractor(x))
            fake.update(extractor(model(x).recon))
    finally:
        model.train(was_training)
    return frechet_distance(*real.mean_cov(), *fake.mean_cov())


def rfid(model: nn.Module, batches: Iterable[torch.Tensor], inception: FeatureExtractor | None) -> float | None:
    """Reconstruction FID with per-frame Inception features; None when Inception weights are not configured."""
    return reconstruction_fd(model, batches, inception)


def rfvd(model: nn.Module, batches: Iterable[torch.Tensor], i3d: FeatureExtractor | None) -> float | None:
    """Reconstruction FVD with per-clip I3D features; None when I3D weights are not configured."""
    return reconstruction_fd(model, batches, i3d)
