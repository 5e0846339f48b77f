"""Discriminator shapes, hinge losses, the GAN weight ramp, the combined loss and stage 2's frozen encoder."""

import pytest
import torch

from vitok import ViTok
from vitok.discriminator import Discriminator, DiscriminatorConfig, minibatch_std
from vitok.gan import discriminator_loss, gan_weight, generator_hinge_loss, hinge_d_loss
from vitok.losses import stage1_loss, tokenizer_loss
from vitok.lpips import LPIPS

TINY_D = DiscriminatorConfig(base_channels=8, max_channels=32, num_blocks=2, mbstd_group=2)


def test_discriminator_scores_each_frame():
    torch.manual_seed(0)
    disc = Discriminator(TINY_D)
    assert disc(torch.rand(3, 16, 16, 3)).shape == (3,)
    clips = torch.rand(2, 4, 16, 24, 3)
    logits = disc(clips)
    assert logits.shape == (8,) and logits.dtype == torch.float32
    with pytest.raises(ValueError, match="expected"):
        disc(torch.rand(2, 16, 16))
    # minibatch std appends one channel and copes with a batch its group size does not divide
    assert minibatch_std(torch.rand(5, 4, 2, 2), 4).shape == (5, 5, 2, 2)


def test_hinge_losses_and_ramp():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    torch.testing.assert_close(hinge_d_loss(real, fake), torch.tensor(0.5 * (0.25 + 0.5)))
    torch.testing.assert_close(generator_hinge_loss(fake), torch.tensor(1.0))
    assert [gan_weight(s, 10, 4, 0.05) for s in (0, 9, 10, 11, 13, 100)] == pytest.approx(
        [0.0, 0.0, 0.0125, 0.025, 0.05, 0.05])
    assert gan_weight(10, 10, 0, 0.05) == 0.05


def test_tokenizer_loss_terms_are_separate():
    torch.manual_seed(0)
    model, disc, lpips = ViTok.from_name("N-N/8").train(), Discriminator(TINY_D), LPIPS()
    torch.nn.init.normal_(model.decoder.to_pixels.weight, std=0.05)
    x = torch.rand(2, 2, 16, 16, 3) * 2 - 1
    out = model(x)
    terms = tokenizer_loss(out, x, beta=1e-3, l1_weight=0.5, lpips=lpips, lpips_weight=1.0, disc=disc, gan_weight=0.1)
    assert set(terms) == {"loss", "mse", "kl", "l1", "lpips", "gan_g"}
    expected = terms["mse"] + 1e-3 * terms["kl"] + 0.5 * terms["l1"] + terms["lpips"] + 0.1 * terms["gan_g"]
    torch.testing.assert_close(terms["loss"], expected)
    # weights of zero skip the networks entirely; stage1_loss is the reconstruction + KL subset
    plain = tokenizer_loss(out, x, lpips=lpips, disc=disc)
    assert set(plain) == {"loss", "mse", "kl"}
    torch.testing.assert_close(stage1_loss(out, x)["loss"], plain["loss"])


def test_stage2_trains_decoder_and_discriminator_only():
    torch.manual_seed(0)
    model = ViTok.from_name("N-N/8")
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    decoder_before = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    model.freeze_encoder().train()
    assert not model.encoder.training and model.decoder.training
    assert not any(p.requires_grad for p in model.encoder.parameters())
    disc = Discriminator(TINY_D)
    g_opt = torch.optim.AdamW(model.decoder.parameters(), lr=1e-3, weight_decay=1e-4)
    d_opt = torch.optim.AdamW(disc.parameters(), lr=2e-5, betas=(0.0, 0.99))
    d_before = [p.clone() for p in disc.parameters()]
    x = torch.rand(4, 1, 16, 16, 3) * 2 - 1
    for _ in range(3):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
            g_terms = tokenizer_loss(out, x, disc=disc, gan_weight=0.05)
        g_opt.zero_grad(set_to_none=True)
        g_terms["loss"].backward()
        g_opt.step()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            d_terms = discriminator_loss(disc, x, out.recon)
        d_opt.zero_grad(set_to_none=True)
        d_terms["d_loss"].backward()
        d_opt.step()
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, encoder_before[key]), key
    assert any(not torch.equal(v, decoder_before[k]) for k, v in model.decoder.state_dict().items())
    assert any(not torch.equal(p, q) for p, q in zip(disc.parameters(), d_before))
