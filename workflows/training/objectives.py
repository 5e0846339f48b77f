"""The training objective of a stage, built from the config (paper Eq. 1).

Stage 1: MSE (+ L1) + beta KL + eta LPIPS. Stage 2 (encoder frozen): the same reconstruction terms plus
lambda times the generator hinge loss against a StyleGAN-style discriminator, which has its own AdamW and
learning rate and starts at `gan_start_step` with a linear warm-up.

The discriminator is small and replicated on every rank outside DeepSpeed: its gradients are averaged
with one all-reduce per step, and its weights and optimiser state travel in the checkpoint (rank 0 writes
them; every rank reads them back).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.distributed as dist

from vitok.discriminator import Discriminator
from vitok.gan import discriminator_loss, gan_weight
from vitok.losses import tokenizer_loss
from vitok.lpips import load_lpips
from workflows.config import TrainConfig

log = logging.getLogger(__name__)
DISCRIMINATOR_FILE = "discriminator.pt"


class Objective:
    def __init__(self, config: TrainConfig, device: torch.device, world: int):
        self.config = config
        self.world = world
        o = config.optim
        # LPIPS is frozen and only read; without weights the term is off (the run's `lpips` param says so).
        self.lpips = load_lpips(config.weights.lpips or None)
        if self.lpips is not None:
            self.lpips.to(device).eval().requires_grad_(False)
        elif o.lpips_weight > 0:
            log.warning("LPIPS is off: optim.lpips_weight=%s but weights.lpips is empty", o.lpips_weight)
        self.disc: Discriminator | None = None
        self.disc_optimizer: torch.optim.Optimizer | None = None
        if config.train.stage == 2 and o.gan_weight > 0:
            torch.manual_seed(config.train.seed + 1)  # the same initial discriminator on every rank
            self.disc = Discriminator().to(device)
            self.disc_optimizer = torch.optim.AdamW(self.disc.parameters(), lr=o.disc_lr, betas=o.betas)

    def gan_weight(self, step: int) -> float:
        o = self.config.optim
        return gan_weight(step, o.gan_start_step, o.gan_warmup_steps, o.gan_weight) if self.disc else 0.0

    def generator_terms(self, output, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        o = self.config.optim
        return tokenizer_loss(
            output, x, beta=o.kl_beta, l1_weight=o.l1_weight,
            lpips=self.lpips, lpips_weight=o.lpips_weight,
            disc=self.disc, gan_weight=self.gan_weight(step),
        )

    def discriminator_step(self, x: torch.Tensor, recon: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """One discriminator update on real pixels and detached reconstructions, once the GAN has started."""
        if self.disc is None or self.gan_weight(step) == 0.0:
            return {}
        # zero first: the generator's backward also left gradients in the discriminator's parameters
        self.disc_optimizer.zero_grad(set_to_none=True)
        terms = discriminator_loss(self.disc, x, recon)
        terms["d_loss"].backward()
        if self.world > 1:
            for p in self.disc.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad.div_(self.world)
        self.disc_optimizer.step()
        return terms

    def save(self, folder: Path) -> None:
        if self.disc is not None:
            state = {"model": self.disc.state_dict(), "optimizer": self.disc_optimizer.state_dict()}
            torch.save(state, folder / DISCRIMINATOR_FILE)

    def load(self, folder: Path) -> None:
        if self.disc is not None and (folder / DISCRIMINATOR_FILE).is_file():
            state = torch.load(folder / DISCRIMINATOR_FILE, map_location="cpu")
            self.disc.load_state_dict(state["model"])
            self.disc_optimizer.load_state_dict(state["optimizer"])
