"""The training objective of a stage, built from the config (paper Eq. 1).

Stage 1: MSE (+ L1) + beta KL + eta LPIPS. Stage 2 (encoder frozen): the same reconstruction terms plus
lambda times the generator hinge loss against a StyleGAN-style discriminator, which has its own AdamW and
learning rate and starts at `gan_start_step` with a linear warm-up (optionally with an R1 penalty).

LPIPS and the discriminator are fp32 networks outside the DeepSpeed engine; they get fp32 inputs (the
engine's bf16 reconstructions are cast) and every loss is taken in fp32.

The discriminator is small and replicated on every rank: it accumulates its gradients over the micro-steps
of one optimiser step, averages them across ranks with a single all-reduce of one flat buffer, and steps
once per optimiser step, as the generator does. While the generator's loss flows back through it, its
parameters do not require gradients, so that backward leaves nothing in them. Its weights and optimiser
state travel in the checkpoint (rank 0 writes them; every rank reads them back).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

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
            # the same initial discriminator on every rank, without disturbing the ranks' own random streams
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.train.seed + 1)
                self.disc = Discriminator().to(device)
            self.disc_optimizer = torch.optim.AdamW(
                self.disc.parameters(), lr=o.disc_lr, betas=o.betas, weight_decay=o.weight_decay
            )
            self.disc.requires_grad_(False)  # switched on only inside its own update

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

    def discriminator_backward(self, x: torch.Tensor, recon: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """Adds this micro-batch's share of the discriminator's gradient (the loss over `grad_accum`), once
        the GAN has started; `discriminator_step` applies the accumulated update."""
        if self.disc is None or self.gan_weight(step) == 0.0:
            return {}
        self.disc.requires_grad_(True)
        try:
            terms = discriminator_loss(self.disc, x, recon, r1_weight=self.config.optim.disc_r1_weight)
            (terms["d_loss"] / self.config.train.grad_accum).backward()
        finally:
            self.disc.requires_grad_(False)
        return {k: v.detach() for k, v in terms.items()}

    def discriminator_step(self, step: int) -> None:
        """One discriminator update per optimiser step: the gradients averaged across ranks, then AdamW."""
        if self.disc is None or self.gan_weight(step) == 0.0:
            return
        grads = [p.grad for p in self.disc.parameters() if p.grad is not None]
        if self.world > 1 and grads:
            flat = _flatten_dense_tensors(grads)
            dist.all_reduce(flat)
            flat.div_(self.world)
            for grad, reduced in zip(grads, _unflatten_dense_tensors(flat, grads)):
                grad.copy_(reduced)
        self.disc_optimizer.step()
        self.disc_optimizer.zero_grad(set_to_none=True)

    def save(self, folder: Path) -> None:
        if self.disc is not None:
            state = {"model": self.disc.state_dict(), "optimizer": self.disc_optimizer.state_dict()}
            torch.save(state, folder / DISCRIMINATOR_FILE)

    def load(self, folder: Path) -> None:
        if self.disc is not None and (folder / DISCRIMINATOR_FILE).is_file():
            state = torch.load(folder / DISCRIMINATOR_FILE, map_location="cpu")
            self.disc.load_state_dict(state["model"])
            self.disc_optimizer.load_state_dict(state["optimizer"])
