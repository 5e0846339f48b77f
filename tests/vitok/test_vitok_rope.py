"""3D axial RoPE: relative-position logits, the image special case, resolution independence."""

import torch

from vitok import ViTok, ViTokConfig
from vitok.rope import apply_rope, axis_pairs, grid_positions, rope_angles, rope_cos_sin


def _logits(q, k, positions, head_dim):
    angles = rope_angles(positions, head_dim)
    cos, sin = angles.cos(), angles.sin()
    return apply_rope(q, cos, sin) @ apply_rope(k, cos, sin).transpose(-1, -2)  # (L, L)


def test_axis_pairs_split_evenly():
    assert axis_pairs(64) == (10, 11, 11)  # S/B: 32 pairs
    assert axis_pairs(72) == (12, 12, 12)  # L: 36 pairs
    assert axis_pairs(32) == (5, 5, 6)
    assert sum(axis_pairs(64)) == 32


def test_logits_depend_only_on_relative_offsets():
    torch.manual_seed(0)
    head_dim, positions = 48, grid_positions((3, 4, 5))
    q, k = torch.randn(positions.shape[0], head_dim), torch.randn(positions.shape[0], head_dim)
    base = _logits(q, k, positions, head_dim)
    for shift in ([1.0, 0.0, 0.0], [0.0, 7.0, 0.0], [2.0, 3.0, 11.0]):
        shifted = _logits(q, k, positions + torch.tensor(shift), head_dim)
        torch.testing.assert_close(shifted, base, atol=1e-4, rtol=1e-4)
    # and they do depend on the offsets: permuting positions changes the logits
    assert not torch.allclose(_logits(q, k, positions.flip(0), head_dim), base, atol=1e-3)


def test_each_axis_rotates_only_its_own_pairs():
    t, h, w = axis_pairs(64)
    angles = rope_angles(torch.tensor([[0.0, 5.0, 0.0]]), 64)[0]
    assert (angles[:t] == 0).all() and (angles[t:t + h] != 0).all() and (angles[t + h:] == 0).all()


def test_image_time_pairs_are_identity():
    cos, sin = rope_cos_sin((1, 4, 4), 64)
    t = axis_pairs(64)[0]
    assert (cos[:, :t] == 1).all() and (sin[:, :t] == 0).all()


def test_rope_runs_in_fp32_and_returns_input_dtype():
    x = torch.randn(2, 3, 16, 32).bfloat16()
    cos, sin = rope_cos_sin((1, 4, 4), 32)
    out = apply_rope(x, cos, sin)
    assert out.dtype == torch.bfloat16 and out.shape == x.shape


def test_video_syntax_with_q1_equals_image_path():
    torch.manual_seed(0)
    image = ViTok.from_name("N-N/8").eval()
    video = ViTok(ViTokConfig.from_name("N-N/1x8")).eval()
    video.load_state_dict(image.state_dict())
    x = torch.rand(2, 1, 16, 24, 3) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(video(x).recon, image(x).recon)
        # frames with q = 1 are separate token layers: a 2-frame clip encodes to a (2, h, w) latent grid
        assert video.encode(x.repeat(1, 2, 1, 1, 1)).shape == (2, 2, 2, 3, 16)


def test_one_model_serves_two_resolutions():
    torch.manual_seed(0)
    model = ViTok.from_name("N-N/8").eval()
    torch.nn.init.normal_(model.decoder.to_pixels.weight, std=0.02)  # make outputs non-trivial
    with torch.no_grad():
        small = model(torch.rand(1, 1, 16, 16, 3) * 2 - 1)
        large = model(torch.rand(1, 1, 40, 24, 3) * 2 - 1)
    assert small.recon.shape == (1, 1, 16, 16, 3) and large.recon.shape == (1, 1, 40, 24, 3)
    assert large.z.shape == (1, 1, 5, 3, 16)
    assert torch.isfinite(large.recon).all() and large.recon.abs().sum() > 0
