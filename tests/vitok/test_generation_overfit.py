"""The latent DiT learns: on real tokenizer latents it overfits a handful of photographs (one class each) and
a video clip (T' > 1, unconditional), and samples land on the training latent they were asked for.

The tokenizer is an untrained tiny ViTok: its latents are still a fixed, structured function of the pixels,
which is all a generator needs to memorise. Distances are measured in the normalised latent space, where the
starting noise is about sqrt(numel) away from any latent.
"""

import torch

from tests.vitok.test_vitok_overfit import real_photos, smooth_clips
from vitok import ViTok
from vitok.generation import DiT, LatentStats, flow_matching_loss, sample


def train(model: DiT, x0: torch.Tensor, y: torch.Tensor | None, steps: int, lr: float) -> list[float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        loss = flow_matching_loss(model, x0, y, null_class=model.config.null_class)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    return [float(v) for v in losses]


def test_dit_overfits_photo_latents_and_samples_land_on_their_class():
    torch.manual_seed(0)
    tokenizer = ViTok.from_name("N-N/8", channels=4).eval()
    with torch.no_grad():
        latents = tokenizer.encode(real_photos(64))  # (4, 1, 8, 8, 4): four photographs, E = 256 each
    stats = LatentStats.from_latents(latents)
    x0 = stats.normalize(latents)
    labels = torch.arange(4)  # one class per photograph

    model = DiT.from_name("DiT-N/2", channels=4, num_classes=4)
    losses = train(model, x0.repeat(8, 1, 1, 1, 1), labels.repeat(8), steps=300, lr=3e-3)
    start, end = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    print(f"loss {start:.3f} -> {end:.3f}")
    assert end < 0.3 * start, (start, end)

    model.eval()
    noise = torch.randn(16, *x0.shape[1:], generator=torch.Generator().manual_seed(1))
    wanted = labels.repeat_interleave(4)  # four samples of each class
    to_noise = (noise - x0[wanted]).flatten(1).norm(dim=1)  # (16,) where sampling starts
    for method, steps, cfg in (("euler", 20, 1.0), ("heun", 10, 1.0), ("heun", 10, 2.0)):
        samples = sample(model, noise, wanted, steps, method, cfg, null_class=model.config.null_class)
        distances = torch.cdist(samples.flatten(1), x0.flatten(1))  # (16, 4) to every training latent
        to_own = distances[torch.arange(16), wanted]
        print(f"{method} cfg {cfg}: distance to own latent / to noise, worst {(to_own / to_noise).max():.3f}")
        assert (to_own < 0.25 * to_noise).all(), (method, cfg, to_own, to_noise)
        assert torch.equal(distances.argmin(dim=1), wanted)  # the nearest training latent is the asked-for one
    # Back in the tokenizer's space, the samples decode like the latents they reproduce.
    decoded = tokenizer.decode(stats.denormalize(samples[::4]))
    assert decoded.shape == (4, 1, 64, 64, 3)


def test_dit_learns_a_video_latent_unconditionally():
    torch.manual_seed(0)
    tokenizer = ViTok.from_name("N-N/2x8", channels=4).eval()
    with torch.no_grad():
        latent = tokenizer.encode(smooth_clips(1, 8, 32))  # (1, 4, 4, 4, 4): T' = 4 latent frames
    assert latent.shape[1] == 4
    stats = LatentStats.from_latents(latent)
    x0 = stats.normalize(latent)

    model = DiT.from_name("DiT-N/2", channels=4)  # num_classes = 0: unconditional
    losses = train(model, x0.repeat(4, 1, 1, 1, 1), None, steps=200, lr=3e-3)
    start, end = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    print(f"loss {start:.3f} -> {end:.3f}")
    assert end < 0.3 * start, (start, end)

    noise = torch.randn(4, *x0.shape[1:], generator=torch.Generator().manual_seed(1))
    samples = sample(model.eval(), noise, steps=10, method="heun")
    assert samples.shape == (4, 4, 4, 4, 4)
    to_clip, to_noise = (samples - x0).flatten(1).norm(dim=1), (noise - x0).flatten(1).norm(dim=1)
    print(f"distance to the clip's latent / to noise, worst {(to_clip / to_noise).max():.3f}")
    assert (to_clip < 0.3 * to_noise).all(), (to_clip, to_noise)
    assert tokenizer.decode(stats.denormalize(samples)).shape == (4, 8, 32, 32, 3)
