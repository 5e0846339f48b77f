"""Frechet distance against an independent NumPy/SciPy computation; rFID/rFVD mechanics with tiny extractors."""

import numpy as np
import scipy.linalg
import torch
from torch import nn

from tests.feature_networks import TinyI3D, TinyInception
from vitok import ViTok
from vitok.fid import FeatureStats, frechet_distance, load_i3d, load_inception, rfid, rfvd


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """The pytorch-fid recipe: sqrtm of the covariance product, real part."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_frechet_distance_matches_scipy_on_random_features():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 12))
    b = rng.normal(size=(250, 12)) @ rng.normal(size=(12, 12)) * 0.5 + 0.3
    stats_a, stats_b = FeatureStats(), FeatureStats()
    for chunk in np.array_split(a, 7):  # streamed in uneven pieces
        stats_a.update(torch.from_numpy(chunk).float())
    stats_b.update(torch.from_numpy(b))
    mean, cov = stats_a.mean_cov()
    np.testing.assert_allclose(cov.numpy(), np.cov(a.astype(np.float32).astype(np.float64), rowvar=False), atol=1e-9)
    ours = frechet_distance(*stats_a.mean_cov(), *stats_b.mean_cov())
    expected = _scipy_fid(a.astype(np.float32).astype(np.float64), b)
    assert abs(ours - expected) < 1e-6 * max(1.0, abs(expected)), (ours, expected)
    assert abs(frechet_distance(mean, cov, mean, cov)) < 1e-8


class Identity(nn.Module):
    """A "tokenizer" that reconstructs perfectly."""

    def forward(self, x):
        return type("Out", (), {"recon": x})()


def test_rfid_and_rfvd_mechanics(tmp_path):
    torch.manual_seed(0)
    torch.jit.script(TinyInception()).save(str(tmp_path / "inception.pt"))
    torch.jit.script(TinyI3D()).save(str(tmp_path / "i3d.pt"))
    inception, i3d = load_inception(str(tmp_path / "inception.pt")), load_i3d(str(tmp_path / "i3d.pt"))
    assert load_inception(None) is None and load_i3d("") is None
    batches = [torch.rand(8, 2, 16, 16, 3) * 2 - 1 for _ in range(3)]
    assert inception(batches[0]).shape == (16, 8) and i3d(batches[0]).shape == (8, 6)
    # FID(X, X) ~ 0: a perfect reconstruction
    assert abs(rfid(Identity(), batches, inception)) < 1e-6
    assert abs(rfvd(Identity(), batches, i3d)) < 1e-6
    # an untrained tokenizer (mid-grey output) is far from its inputs; training mode is restored afterwards
    model = ViTok.from_name("N-N/2x8").train()
    assert rfid(model, batches, inception) > 1e-3 and rfvd(model, batches, i3d) > 1e-3
    assert model.training
    # without weights: "not computed"
    assert rfid(model, batches, None) is None and rfvd(model, batches, None) is None
