"""The latent DiT: names and sizes against the DiT paper, analytic MACs, shapes for image and video latents,
adaLN-Zero start, positions over (t, h, w), the null class and classifier-free guidance, checkpoints."""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from vitok.generation import DiT, DiTConfig, dit_forward_macs, dit_stats, guided_velocity
from vitok.rope import rope_cos_sin


def with_random_zero_layers(model: DiT, seed: int = 0) -> DiT:
    """Give the adaLN-Zero layers (zero at init) small random weights, so outputs depend on every input."""
    g = torch.Generator().manual_seed(seed)
    zero_layers = [b.modulation[-1] for b in model.blocks] + [model.final.modulation[-1], model.final.linear]
    with torch.no_grad():
        for layer in zero_layers:
            for p in (layer.weight, layer.bias):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


@pytest.mark.parametrize(
    "size,params_m,gflops",  # DiT paper (Peebles & Xie 2023), Table 1 / Fig. 2: /2 on 32x32x4 latents, 1000 classes
    [("S", 33.0, 6.06), ("B", 130.0, 23.01), ("L", 458.0, 80.71), ("XL", 675.0, 118.64)],
)
def test_paper_sizes_match_dit(size, params_m, gflops):
    config = DiTConfig.from_name(f"DiT-{size}/2", channels=4, num_classes=1000)
    stats = dit_stats(config, (1, 32, 32))
    assert stats.tokens == 256
    assert abs(stats.params / 1e6 - params_m) / params_m < 0.01, stats
    assert abs(stats.gmacs - gflops) / gflops < 0.002, stats


def test_names_parse_and_reject():
    config = DiTConfig.from_name("dit-xl/2", channels=16, num_classes=10)
    assert (config.width, config.depth, config.heads, config.patch_size, config.temporal_patch) == (1152, 28, 16, 2, 1)
    assert config.name == "DiT-XL/2" and config.null_class == 10
    video = DiTConfig.from_name("DiT-S/2x1", channels=8)
    assert (video.temporal_patch, video.patch_size, video.null_class) == (2, 1, None)
    for bad in ("DiT-Q/2", "S/2", "DiT-S", "DiT-S/0"):
        with pytest.raises(ValueError):
            DiTConfig.from_name(bad)
    assert DiTConfig.from_dict(config.to_dict()) == config


def test_forward_macs_hand_count_and_flop_counter():
    config = DiTConfig(width=8, depth=2, heads=2, patch_size=2, channels=3, freq_dim=16, num_classes=5)
    # Latent grid 2x4x6 -> tokens 2 * 2 * 3 = 12; P = 2*2*3 = 12 values per token; SwiGLU hidden int(2.67*8) = 21.
    #   patch embed   12 * 12 * 8                                   =  1152
    #   time MLP      16 * 8 + 8 * 8                                =   192
    #   per block     12 * (4*64 + 3*8*21) + 2 * 144 * 8 + 8 * 48   = 9120 + 2304 + 384 = 11808, x 2 = 23616
    #   final         8 * 16 + 12 * 8 * 12                          =  1280
    assert dit_forward_macs(config, tokens=12) == 1152 + 192 + 23616 + 1280 == 26240

    model = DiT(config).eval()
    x = torch.zeros(1, 2, 4, 6, 3)
    # The math backend decomposes attention into matmuls the counter sees (the fused CPU kernel counts as zero).
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x, torch.rand(1), torch.tensor([1]))
    assert counter.get_total_flops() / 2 == 26240  # the counter reports FLOPs = 2 x MACs


@pytest.mark.parametrize(
    "name,shape",
    [
        ("DiT-N/1", (2, 1, 8, 8, 4)),  # image latents, one token per cell
        ("DiT-N/2", (2, 1, 8, 6, 4)),  # image latents, 2x2 cells per token, non-square
        ("DiT-N/1", (2, 4, 4, 4, 4)),  # video latents T' = 4, one latent frame per token row
        ("DiT-N/2x2", (3, 4, 4, 6, 4)),  # video latents, 2x2x2 cells per token
    ],
)
def test_shapes_for_image_and_video_latents(name, shape):
    torch.manual_seed(0)
    model = with_random_zero_layers(DiT.from_name(name, channels=4, num_classes=3))
    x = torch.randn(shape)
    out = model(x, torch.rand(shape[0]), torch.randint(0, 4, (shape[0],)))
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unconditional_model_and_input_checks():
    model = DiT.from_name("DiT-N/2", channels=4)
    assert model.label_embed is None and model.config.null_class is None
    x = torch.randn(2, 1, 4, 4, 4)
    assert model(x, torch.rand(2)).shape == x.shape
    with pytest.raises(ValueError, match="unconditional"):
        model(x, torch.rand(2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="does not tile"):
        model(torch.randn(2, 1, 5, 4, 4), torch.rand(2))
    with pytest.raises(ValueError, match="channels|latents"):
        model(torch.randn(2, 1, 4, 4, 3), torch.rand(2))
    conditional = DiT.from_name("DiT-N/2", channels=4, num_classes=3)
    with pytest.raises(ValueError, match="class-conditional"):
        conditional(x, torch.rand(2))


def test_adaln_zero_starts_as_identity_and_zero_velocity():
    torch.manual_seed(0)
    model = DiT.from_name("DiT-N/1", channels=4, num_classes=3)
    x, t, y = torch.randn(2, 2, 4, 4, 4), torch.rand(2), torch.tensor([0, 3])
    assert torch.equal(model(x, t, y), torch.zeros_like(x))
    h, cond = torch.randn(2, 32, 64), torch.randn(2, 64)
    rope = rope_cos_sin((2, 4, 4), model.config.head_dim)
    for block in model.blocks:
        assert torch.equal(block(h, cond, rope), h)


def test_positions_over_t_h_w_and_mixing_across_frames():
    """A constant input still gives position-dependent outputs along every axis (the model knows where a
    token is), and attention mixes latent frames: changing frame 0 changes the prediction for frame 2."""
    torch.manual_seed(0)
    model = with_random_zero_layers(DiT.from_name("DiT-N/1", channels=4)).eval()
    t = torch.full((1,), 0.5)
    with torch.no_grad():
        out = model(torch.ones(1, 3, 4, 5, 4), t)[0]  # (3, 4, 5, 4)
        for axis in range(3):
            first, second = out.select(axis, 0), out.select(axis, 1)
            assert (first - second).abs().max() > 1e-3, f"axis {axis} not distinguished"
        x = torch.randn(1, 3, 4, 5, 4)
        changed = x.clone()
        changed[:, 0] += 1.0
        delta = (model(changed, t) - model(x, t))[0, 2].abs().max()
    assert delta > 1e-3


def test_batch_elements_are_independent_and_t_scalar_broadcasts():
    torch.manual_seed(0)
    model = with_random_zero_layers(DiT.from_name("DiT-N/2", channels=4, num_classes=3)).eval()
    x, t, y = torch.randn(3, 2, 4, 4, 4), torch.rand(3), torch.tensor([0, 1, 2])
    with torch.no_grad():
        whole = model(x, t, y)
        single = torch.cat([model(x[i : i + 1], t[i : i + 1], y[i : i + 1]) for i in range(3)])
        torch.testing.assert_close(whole, single, atol=1e-5, rtol=1e-5)
        shared = model(x, torch.tensor(0.3), y)
        torch.testing.assert_close(shared, model(x, torch.full((3,), 0.3), y))


def test_classifier_free_guidance_and_null_class():
    torch.manual_seed(0)
    model = with_random_zero_layers(DiT.from_name("DiT-N/1", channels=4, num_classes=3)).eval()
    x, t, y = torch.randn(2, 1, 4, 4, 4), torch.rand(2), torch.tensor([0, 2])
    null = torch.full_like(y, 3)
    with torch.no_grad():
        conditional, unconditional = model(x, t, y), model(x, t, null)
        assert (conditional - unconditional).abs().max() > 1e-3  # the label matters
        guided = {scale: guided_velocity(model, y, scale, null_class=3)(x, t) for scale in (1.0, 0.0, 4.0)}
        torch.testing.assert_close(guided[1.0], conditional)
        torch.testing.assert_close(guided[0.0], unconditional, atol=1e-5, rtol=1e-5)
        expected = unconditional + 4.0 * (conditional - unconditional)
        torch.testing.assert_close(guided[4.0], expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="null class"):
        guided_velocity(model, y, 4.0)
    with pytest.raises(ValueError, match="guidance"):
        guided_velocity(DiT.from_name("DiT-N/1", channels=4), None, 2.0)


def test_bf16_autocast_close_to_fp32():
    torch.manual_seed(0)
    model = with_random_zero_layers(DiT.from_name("DiT-N/1", channels=4, num_classes=3)).eval()
    x, t, y = torch.randn(2, 2, 4, 4, 4), torch.rand(2), torch.tensor([1, 3])
    with torch.no_grad():
        reference = model(x, t, y)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x, t, y)
    assert low.dtype == torch.bfloat16
    assert (low.float() - reference).norm() / reference.norm() < 0.05


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = with_random_zero_layers(DiT.from_name("DiT-N/2", channels=4, num_classes=3)).eval()
    model.save_pretrained(tmp_path / "dit")
    loaded = DiT.from_pretrained(tmp_path / "dit")
    assert loaded.config == model.config
    x, t, y = torch.randn(2, 1, 4, 4, 4), torch.rand(2), torch.tensor([0, 3])
    with torch.no_grad():
        assert torch.equal(loaded(x, t, y), model(x, t, y))
