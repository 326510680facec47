"""The ELBO objective, with a beta weight, free bits and a KL warm-up schedule."""
from __future__ import annotations

import torch

from vaezoo.core import VAE, Objective, VAEOutput
from vaezoo.core.estimators import elbo_terms


class ELBO(Objective):
    """E[log p(x|z)] - beta_t * KL(q(z|x) || p(z)); beta = 1 with no warm-up is the plain VAE.

    free_bits > 0 (nats per latent dimension; Kingma et al., 2016) floors each dimension's batch-mean KL, so no
    dimension is pushed below it. warmup_steps > 0 raises beta_t linearly from 0 to beta over that many steps
    (Bowman et al., 2016; Sønderby et al., 2016), reading `step`, which the training loop sets.
    """

    def __init__(self, beta: float = 1.0, free_bits: float = 0.0, warmup_steps: int = 0) -> None:
        super().__init__()
        if not beta >= 0:
            raise ValueError(f"beta must be non-negative, got {beta}")
        if not free_bits >= 0:
            raise ValueError(f"free_bits must be non-negative, got {free_bits}")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be a non-negative int, got {warmup_steps!r}")
        self.beta = float(beta)
        self.free_bits = float(free_bits)
        self.warmup_steps = warmup_steps

    def kl_weight(self) -> float:
        """beta_t at the current step."""
        if self.warmup_steps == 0:
            return self.beta
        return self.beta * min(1.0, self.step / self.warmup_steps)

    def needs(self) -> frozenset[str]:
        return frozenset({"kl_per_dim"}) if self.free_bits > 0 else frozenset()

    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        per_dim = self.free_bits > 0
        out = elbo_terms(vae, x, y, kl_per_dim=per_dim)
        if per_dim:
            kl = out.terms["kl_per_dim"].mean(0).clamp(min=self.free_bits).sum()
        else:
            kl = out.kl.mean()
        out.loss = -(out.recon.mean() - self.kl_weight() * kl)
        return out
