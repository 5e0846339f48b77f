"""The model library on a CUDA GPU, in the dtypes and kernels a GPU training run uses: ViTok and the DiT in bf16,
attention on the fused flash kernel, torch.compile, the fused AdamW, and the metrics on GPU tensors.

Skipped where no GPU is (CI has none). On a GPU machine with PyTorch alone (vitok needs nothing else):

    python -m pytest --confcutdir=tests/vitok tests/vitok/test_vitok_cuda.py

(`--confcutdir` leaves out the top-level conftest, which starts Ray.)
"""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from vitok import ViTok
from vitok.discriminator import Discriminator
from vitok.gan import discriminator_loss
from vitok.generation import DiT, DiTConfig, flow_matching_loss, multiscale_swd, sample
from vitok.losses import stage1_loss, tokenizer_loss
from vitok.lpips import LPIPS
from vitok.metrics import psnr_per_frame, ssim_per_frame

from tests.vitok.test_vitok_overfit import overfit, real_photos

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

GPU = torch.device("cuda")


def _pixels(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


def test_bf16_step_on_gpu_agrees_with_fp32_on_cpu():
    """Same weights and input: the GPU's bf16-autocast loss and gradients match the CPU's fp32 ones to bf16
    precision (the posterior mean is used, so both compute the same function)."""
    torch.manual_seed(0)
    cpu_model = ViTok.from_name("T-T/8").eval()
    with torch.no_grad():  # zero-initialised layers (the pixel head) would leave the layers below without gradient
        for p in cpu_model.parameters():
            if not p.any():
                p.normal_(0, 0.02)
    gpu_model = ViTok.from_name("T-T/8").eval()
    gpu_model.load_state_dict(cpu_model.state_dict())
    gpu_model.to(GPU)
    x = _pixels(4, 1, 64, 64, 3)

    cpu_loss = stage1_loss(cpu_model(x), x)["loss"]
    cpu_loss.backward()
    xg = x.to(GPU)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = gpu_model(xg)
    gpu_loss = stage1_loss(out, xg)["loss"]
    gpu_loss.backward()

    assert out.recon.dtype == torch.bfloat16
    assert gpu_loss.item() == pytest.approx(cpu_loss.item(), rel=0.03)
    for (name, p_cpu), p_gpu in zip(cpu_model.named_parameters(), gpu_model.parameters()):
        if p_cpu.grad is None:
            continue
        assert torch.isfinite(p_gpu.grad).all(), name
        assert _cosine(p_cpu.grad, p_gpu.grad.cpu()) > 0.98, name


@pytest.mark.parametrize("weights", ["bf16-autocast", "bf16"])
def test_attention_runs_on_the_flash_kernel(weights):
    """With SDPA restricted to FlashAttention, forward and backward run (it raises when the inputs do not fit
    the kernel, e.g. fp32 q/k after RoPE): fp32 weights under autocast, and bf16 weights as DeepSpeed keeps
    them. The DiT too."""
    torch.manual_seed(0)
    dtype = torch.bfloat16 if weights == "bf16" else torch.float32
    tokenizer = ViTok.from_name("S-B/16").to(GPU, dtype).train()
    dit = DiT(DiTConfig.from_name("DiT-S/1", channels=16, num_classes=10)).to(GPU, dtype).train()
    x = _pixels(2, 1, 128, 128, 3).to(GPU, dtype)
    latents = torch.randn(2, 1, 8, 8, 16, device=GPU, dtype=dtype)
    labels = torch.tensor([1, 2], device=GPU)
    autocast = torch.autocast("cuda", torch.bfloat16, enabled=dtype != torch.bfloat16)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION), autocast:
        loss = stage1_loss(tokenizer(x), x)["loss"] + flow_matching_loss(dit, latents, labels, dit.config.null_class)
        loss.backward()
    grads = [p.grad for m in (tokenizer, dit) for p in m.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_tiny_model_overfits_on_gpu_with_fused_adamw():
    """The CPU overfit test's photos and steps, in bf16 autocast with the fused AdamW the trainer uses."""
    torch.manual_seed(0)
    start, end = overfit(ViTok.from_name("N-N/8").to(GPU), real_photos(32).to(GPU), 150, 5e-3, fused=True)
    assert end > start + 10 and end > 30.0, (start, end)


def test_compiled_model_matches_eager():
    torch.manual_seed(0)
    model = ViTok.from_name("T-T/8").to(GPU).eval()
    x = _pixels(4, 1, 64, 64, 3).to(GPU)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        eager = model(x).recon.float()
        compiled = torch.compile(model)(x).recon.float()
    torch.testing.assert_close(compiled, eager, atol=3e-2, rtol=0)


def test_metrics_of_gpu_tensors_equal_the_cpu_ones():
    """Evaluation scores the reconstruction where the model ran: PSNR and SSIM of GPU tensors are the CPU's."""
    a, b = _pixels(3, 2, 32, 32, 3, seed=1), _pixels(3, 2, 32, 32, 3, seed=2)
    torch.testing.assert_close(psnr_per_frame(a.to(GPU), b.to(GPU)).cpu(), psnr_per_frame(a, b))
    torch.testing.assert_close(ssim_per_frame(a.to(GPU), b.to(GPU)).cpu(), ssim_per_frame(a, b))
    swd_cpu = multiscale_swd(a, b, patches_per_image=16, repeats=1, directions=16)
    swd_gpu = multiscale_swd(a.to(GPU), b.to(GPU), patches_per_image=16, repeats=1, directions=16)
    assert swd_gpu == pytest.approx(swd_cpu, rel=1e-4)


def test_perceptual_and_gan_losses_on_gpu():
    """Stage 2's losses on the GPU: LPIPS (random weights: the shapes and devices are what is checked) and the
    discriminator on both sides, its R1 penalty included, with finite gradients."""
    torch.manual_seed(0)
    model = ViTok.from_name("T-T/8").to(GPU).train()
    lpips, disc = LPIPS().to(GPU), Discriminator().to(GPU)
    x = _pixels(2, 1, 64, 64, 3).to(GPU)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(x)
    terms = tokenizer_loss(out, x, lpips=lpips, lpips_weight=1.0, disc=disc, gan_weight=0.1)
    terms["loss"].backward()
    assert {"lpips", "gan_g"} <= set(terms) and torch.isfinite(terms["loss"])
    discriminator_loss(disc, x, out.recon, r1_weight=1.0)["d_loss"].backward()  # R1: a double backward
    assert all(torch.isfinite(p.grad).all() for p in disc.parameters() if p.grad is not None)


def test_dit_samples_on_gpu():
    torch.manual_seed(0)
    dit = DiT(DiTConfig.from_name("DiT-N/1", channels=4, num_classes=10)).to(GPU).eval()
    noise = torch.randn(3, 1, 4, 4, 4, device=GPU)
    labels = torch.tensor([0, 1, 2], device=GPU)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        out = sample(dit, noise, labels, steps=4, cfg_scale=2.0, null_class=dit.config.null_class)
    assert out.shape == noise.shape and out.device.type == "cuda" and torch.isfinite(out).all()
