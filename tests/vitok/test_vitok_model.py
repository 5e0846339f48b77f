"""Shapes, name parsing, the Gaussian bottleneck, losses, metrics, grids and checkpoints."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vitok import ViTok, ViTokConfig, check_input_shape
from vitok.losses import kl_divergence, stage1_loss
from vitok.metrics import psnr, ssim
from vitok.model import patchify, unpatchify
from vitok.visualize import reconstruction_grid


def _pixels(*shape):
    return torch.rand(*shape) * 2 - 1


@pytest.mark.parametrize(
    "name,shape,latent",
    [("N-N/8", (2, 1, 32, 16, 3), (2, 1, 4, 2, 16)), ("T-T/2x8", (1, 4, 16, 32, 3), (1, 2, 2, 4, 16))],
)
def test_encode_decode_shapes(name, shape, latent):
    model = ViTok.from_name(name).eval()
    with torch.no_grad():
        z = model.encode(_pixels(*shape))
        assert z.shape == latent
        assert model.decode(z).shape == shape


def test_rmsnorm_variant_runs():
    config = ViTokConfig.from_name("N-N/8", channels=4, norm="rmsnorm")
    model = ViTok(config).eval()
    with torch.no_grad():
        assert model(_pixels(1, 1, 16, 16, 3)).z.shape == (1, 1, 2, 2, 4)
    with pytest.raises(ValueError, match="norm must be"):
        ViTokConfig.from_name("N-N/8", norm="batchnorm")


def test_patchify_roundtrip():
    x = _pixels(2, 4, 16, 24, 3)
    tokens = patchify(x, 2, 8)
    assert tokens.shape == (2, 2, 2, 3, 2 * 8 * 8 * 3)
    torch.testing.assert_close(unpatchify(tokens, 2, 8), x)
    # a token holds one contiguous q x p x p tubelet
    torch.testing.assert_close(tokens[0, 1, 0, 2].view(2, 8, 8, 3), x[0, 2:4, 0:8, 16:24])


@pytest.mark.parametrize(
    "name,needle",
    [("Q-B/16", "valid sizes are N, T, M, S, B, L"), ("S-B", "bad ViTok name 'S-B'"), ("SB/16", "bad ViTok name"),
     ("S-B/4x", "bad ViTok name"), ("S-B/0", "positive")],
)
def test_bad_names_raise_clear_errors(name, needle):
    with pytest.raises(ValueError, match=needle) as info:
        ViTokConfig.from_name(name)
    assert "\n" not in str(info.value)


def test_name_forms():
    video = ViTokConfig.from_name("B-L/4x16", channels=8)
    assert (video.tubelet_size, video.patch_size, video.channels, video.encoder_depth, video.decoder_width) == (
        4, 16, 8, 12, 1152)
    assert ViTokConfig.from_name("S-B/16").tubelet_size == 1 and ViTokConfig.from_name("s-b/16").name == "S-B/16"


def test_input_shape_checks():
    config = ViTokConfig.from_name("S-B/4x16")
    check_input_shape(config, 16, 256, 128)
    with pytest.raises(ValueError, match="patch 16 does not divide height 250"):
        check_input_shape(config, 16, 250, 256)
    with pytest.raises(ValueError, match="patch 16 does not divide width 100"):
        check_input_shape(config, 16, 256, 100)
    with pytest.raises(ValueError, match="tubelet 4 does not divide frames 6"):
        check_input_shape(config, 6, 256, 256)
    with pytest.raises(ValueError, match="does not divide"):
        ViTok.from_name("N-N/8").encode(_pixels(1, 1, 20, 16, 3))


def test_eval_is_deterministic_and_train_samples():
    torch.manual_seed(0)
    model = ViTok.from_name("N-N/8")
    x = _pixels(2, 1, 16, 16, 3)
    with torch.no_grad():
        model.eval()
        out = model(x)
        torch.testing.assert_close(out.z, out.mean)
        torch.testing.assert_close(model.encode(x), model.encode(x))
        model.train()
        a, b = model.encode(x), model.encode(x)
        assert not torch.allclose(a, b)
        torch.testing.assert_close(model.encode(x, sample=False), out.mean)
        model.eval()
        assert not torch.allclose(model.encode(x, sample=True), out.mean)


def test_kl_of_standard_normal_is_zero_and_positive_otherwise():
    zeros = torch.zeros(2, 1, 4, 4, 16)
    assert kl_divergence(zeros, zeros) == 0
    assert kl_divergence(zeros + 1, zeros) == pytest.approx(0.5)
    assert kl_divergence(zeros, zeros + 1) > 0


def test_logvar_is_clamped():
    model = ViTok.from_name("N-N/8").eval()
    c = model.config.channels
    with torch.no_grad():
        model.encoder.to_moments.bias[c:] = 1e4  # the logvar half
        assert (model(_pixels(1, 1, 16, 16, 3)).logvar == model.config.logvar_max).all()
        model.encoder.to_moments.bias[c:] = -1e4
        assert (model(_pixels(1, 1, 16, 16, 3)).logvar == model.config.logvar_min).all()


def test_stage1_loss_terms_are_separate():
    torch.manual_seed(0)
    model = ViTok.from_name("N-N/8").train()
    x = _pixels(2, 1, 16, 16, 3)
    out = model(x)
    terms = stage1_loss(out, x, beta=0.5, l1_weight=2.0)
    assert set(terms) == {"loss", "mse", "kl", "l1"}
    torch.testing.assert_close(terms["loss"], terms["mse"] + 0.5 * terms["kl"] + 2.0 * terms["l1"])
    torch.testing.assert_close(terms["kl"], kl_divergence(out.mean, out.logvar))
    torch.testing.assert_close(terms["mse"], torch.nn.functional.mse_loss(out.recon, x))
    torch.testing.assert_close(terms["l1"], torch.nn.functional.l1_loss(out.recon, x))
    assert "l1" not in stage1_loss(out, x)
    terms["loss"].backward()
    assert model.encoder.patch_embed.weight.grad is not None


def test_bf16_autocast_forward_and_backward():
    model = ViTok.from_name("T-T/2x8").train()
    x = _pixels(2, 2, 16, 16, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        loss = stage1_loss(out, x)["loss"]
    assert out.recon.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_metrics():
    x = _pixels(2, 3, 32, 32, 3)
    assert psnr(x, x) > 80 and ssim(x, x) == pytest.approx(1.0)
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(-1, 1)
    value = psnr(noisy, x)  # noise std 0.1 in [-1, 1] is 0.05 in [0, 1]: about 26 dB before clamping
    assert isinstance(value, float) and 24 < value < 29
    assert 0 < ssim(noisy, x) < 1


def test_reconstruction_grid():
    # 8 images of 8 px: each enlarged 16x to 128 px tiles, the 8 (original over reconstruction) cells on one row
    image = reconstruction_grid(_pixels(10, 1, 8, 8, 3), _pixels(10, 1, 8, 8, 3))
    assert image.dtype.name == "uint8" and image.shape == (4 + 2 * 128 + 4 + 4, 8 * (128 + 4) + 4, 3)
    # video: a strip of 4 frames per sample, 2 cells of 512 px on a row, 3 samples -> 2 rows
    video = reconstruction_grid(_pixels(3, 6, 32, 32, 3), _pixels(3, 6, 32, 32, 3), max_frames=4)
    assert video.shape == (4 + 2 * (2 * 128 + 4 + 4), 2 * (4 * 128 + 4) + 4, 3)
    ones = reconstruction_grid(torch.ones(1, 1, 4, 4, 3), -torch.ones(1, 1, 4, 4, 3), pad=0)
    assert ones.shape == (256, 128, 3) and (ones[:128] == 255).all() and (ones[128:] == 0).all()


def test_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = ViTok.from_name("T-N/2x8", channels=8)
    torch.nn.init.normal_(model.decoder.to_pixels.weight, std=0.02)
    model.eval()
    model.save_pretrained(tmp_path / "ckpt")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == {"model.safetensors", "config.json"}
    loaded = ViTok.from_pretrained(tmp_path / "ckpt")
    assert loaded.config == model.config and not loaded.training
    assert all(p.requires_grad and p.device.type == "cpu" for p in loaded.parameters())
    in_memory = ViTok.from_files({p.name: p.read_bytes() for p in (tmp_path / "ckpt").iterdir()})
    assert in_memory.config == model.config and not in_memory.training
    x = _pixels(2, 4, 16, 16, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).recon, model(x).recon, rtol=0, atol=0)
        torch.testing.assert_close(in_memory(x).recon, model(x).recon, rtol=0, atol=0)


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a ViTok checkpoint"):
        ViTok.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a ViTok checkpoint: config.json is missing"):
        ViTok.from_files({"model.safetensors": b""})
    with pytest.raises(ValueError, match="unsupported checkpoint location"):
        ViTok.from_pretrained("gs://bucket/ckpt")


def test_package_import_is_light():
    code = "import sys, vitok; bad = {'ray', 'mlflow', 'deepspeed', 'boto3'} & set(sys.modules); print(sorted(bad))"
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=repo)
    assert done.stdout.strip() == "[]", done.stderr


def test_torch_loads_with_the_first_model_name_used():
    """A torch-free submodule (vitok.s3_endpoint, which data prep's actors import) costs no torch import."""
    code = ("import sys, vitok.s3_endpoint; print('torch' in sys.modules); "
            "from vitok import ViTok; print('torch' in sys.modules)")
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=repo)
    assert done.stdout.split() == ["False", "True"], done.stderr
