"""The generator workflow's pure parts, without Ray: its config validated at the edge, the sample shares and
noise that make sample i the same at any number of workers, the lr schedule, and the samples grid."""

from __future__ import annotations

import pytest
import torch

from vitok.generation.flow import SAMPLERS
from vitok.generation.latents import MODES
from workflows.config import GENERATION_SAMPLERS, LATENT_NORMALIZATIONS, ConfigError, GenerationConfig
from workflows.generation.grid import samples_grid
from workflows.generation.sampling import initial_noise, share
from workflows.generation.worker import warmup_constant


def test_a_sweep_block_builds_a_validated_config_and_flat_params():
    config = GenerationConfig.from_dict({"model": "DiT-S/2", "steps": 400, "cfg_scale": 4, "weights": {"i3d": "x.pt"}})
    assert config.cfg_scale == 4.0 and config.global_batch_size == config.micro_batch_size
    flat = config.flat()
    assert flat["generation.model"] == "DiT-S/2" and flat["generation.weights.i3d"] == "x.pt"
    assert flat["generation.steps"] == 400 and all(key.startswith("generation.") for key in flat)


def test_the_config_offers_what_vitok_implements():
    assert set(GENERATION_SAMPLERS) == set(SAMPLERS) and set(LATENT_NORMALIZATIONS) == set(MODES)


@pytest.mark.parametrize("raw, message", [
    ({"warmup_steps": 10, "steps": 10}, "generation: warmup_steps must be in [0, steps)"),
    ({"normalization": "minmax"}, "generation: normalization must be one of channel, scale"),
    ({"samples": 1}, "generation: samples must be >= 2"),
    ({"model": "S-B/16"}, "generation: model must be a DiT variant"),
    ({"name": "a/b"}, "generation: name must be non-empty and contain no '/'"),
    ({"class_dropout": 1.0}, "generation: class_dropout must be in [0, 1)"),
    ({"steps": "many"}, "generation.steps: expected int, got 'many'"),
    ({"weights": {"vgg": "x"}}, "generation.weights: unknown key 'vgg'"),
])  # fmt: skip
def test_bad_values_fail_with_one_line_naming_the_key(raw, message):
    with pytest.raises(ConfigError) as err:
        GenerationConfig.from_dict(raw)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("count", [2, 7, 64])
def test_the_ranks_share_every_sample_once_and_each_sample_keeps_its_noise(count):
    reference = initial_noise(range(count), (2, 4, 4, 3), seed=5)
    for world in (1, 2, 3, 8):
        shares = [share(count, rank, world) for rank in range(world)]
        assert [i for part in shares for i in part] == list(range(count))
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
        torch.testing.assert_close(torch.cat([initial_noise(part, (2, 4, 4, 3), seed=5) for part in shares]),
                                   reference, rtol=0, atol=0)  # fmt: skip
    assert not torch.equal(initial_noise(range(count), (2, 4, 4, 3), seed=6), reference)


def test_warmup_is_linear_then_constant():
    assert [warmup_constant(step, 4) for step in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_constant(0, 0) == 1.0


def test_the_samples_grid_shows_each_sample_once_on_white():
    samples = torch.arange(3 * 2 * 16 * 16 * 3).reshape(3, 2, 16, 16, 3).remainder(251).to(torch.uint8)
    grid = samples_grid(samples)
    # 16 px frames enlarged 8x to 128; two frames side by side per sample; 3 cells in one row, 4 px gaps.
    assert grid.shape == (4 + 128 + 4, 4 + 3 * (256 + 4), 3)
    first = grid[4:132, 4:260]
    assert (first[::8, :128:8] == samples[0, 0].numpy()).all() and (first[::8, 128::8] == samples[0, 1].numpy()).all()
    assert (grid[:4] == 255).all() and (grid[:, :4] == 255).all()
