"""Latent normalisation: statistics equal numpy's, streaming and merging give the same, both normalisations do
what they claim and invert, and `latent_stats.json` is read with its documented fields."""

import json

import numpy as np
import pytest
import torch

from vitok.generation import LatentStats


def latents(seed: int = 0) -> torch.Tensor:
    """(6, 2, 3, 4, 5) latents with a different offset and spread per channel, like a tokenizer's."""
    g = torch.Generator().manual_seed(seed)
    offsets, spreads = torch.tensor([3.0, -1.0, 0.0, 10.0, 0.5]), torch.tensor([0.2, 1.0, 4.0, 2.0, 0.7])
    return offsets + spreads * torch.randn(6, 2, 3, 4, 5, generator=g)


def test_stats_equal_numpy():
    z = latents()
    cells = z.numpy().astype(np.float64).reshape(-1, 5)
    stats = LatentStats.from_latents(z)
    np.testing.assert_allclose(stats.channel_mean, cells.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.channel_std, cells.std(0), rtol=1e-12)
    np.testing.assert_allclose(stats.scale, 1 / cells.std(), rtol=1e-12)
    np.testing.assert_allclose(stats.shift, cells.mean(), rtol=1e-12)


def test_channel_normalisation_whitens_each_channel_and_inverts():
    z = latents()
    stats = LatentStats.from_latents(z)
    normalised = stats.normalize(z)
    cells = normalised.reshape(-1, 5).double()
    torch.testing.assert_close(cells.mean(0), torch.zeros(5, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(cells.std(0, correction=0), torch.ones(5, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(stats.denormalize(normalised), z, atol=1e-5, rtol=1e-5)


def test_scale_normalisation_is_one_shift_and_factor_with_unit_overall_std():
    z = latents()
    stats = LatentStats.from_latents(z)
    normalised = stats.normalize(z, mode="scale")
    torch.testing.assert_close(normalised, (z - stats.shift) * stats.scale)
    assert abs(normalised.double().mean().item()) < 1e-5
    assert abs(normalised.double().std(correction=0).item() - 1.0) < 1e-5
    assert normalised.reshape(-1, 5).std(0).max() > 1.5 * normalised.reshape(-1, 5).std(0).min()  # channels differ
    torch.testing.assert_close(stats.denormalize(normalised, mode="scale"), z, atol=1e-5, rtol=1e-5)
    sd_style = LatentStats(stats.channel_mean, stats.channel_std, stats.scale)  # no shift: SD 1/2's z * scale
    torch.testing.assert_close(sd_style.normalize(z, mode="scale"), z * stats.scale)


def test_dtype_is_kept_and_math_runs_in_fp32():
    z = latents()
    stats = LatentStats.from_latents(z)
    low = stats.normalize(z.to(torch.bfloat16))
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), stats.normalize(z), atol=0.05, rtol=0.02)


def test_json_file_fields(tmp_path):
    path = tmp_path / "latent_stats.json"
    # The cache may write more than the three fields normalisation needs; the rest is ignored.
    path.write_text(json.dumps({"mean": [0.5, -1], "std": [2, 0.25], "scale_factor": 0.8, "count": 123}))
    stats = LatentStats.load(path)
    assert stats == LatentStats((0.5, -1.0), (2.0, 0.25), 0.8, shift=0.0)  # shift is optional
    z = torch.tensor([[2.5, -0.5]])
    torch.testing.assert_close(stats.normalize(z), torch.tensor([[1.0, 2.0]]))
    torch.testing.assert_close(stats.normalize(z, mode="scale"), torch.tensor([[2.0, -0.4]]))
    assert LatentStats.load(stats.save(tmp_path / "again.json")) == stats
    path.write_text(json.dumps({"mean": [0, 0], "std": [1, 1], "scale_factor": 0.5, "shift_factor": 1.5}))
    torch.testing.assert_close(LatentStats.load(path).normalize(z, mode="scale"), torch.tensor([[0.5, -1.0]]))


def test_bad_stats_and_inputs_fail_clearly():
    with pytest.raises(ValueError, match="scale"):
        LatentStats.from_dict({"channel_mean": [0.0], "channel_std": [1.0]})
    with pytest.raises(ValueError, match="same"):
        LatentStats((0.0, 1.0), (1.0,), 1.0)
    with pytest.raises(ValueError, match="positive"):
        LatentStats((0.0,), (0.0,), 1.0)
    stats = LatentStats((0.0, 0.0), (1.0, 1.0), 1.0)
    with pytest.raises(ValueError, match="channels"):
        stats.normalize(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="normalisation"):
        stats.normalize(torch.zeros(1, 2), mode="global")
