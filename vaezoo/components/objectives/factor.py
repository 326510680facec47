"""FactorVAE (Kim & Mnih, 2018): the ELBO plus gamma times the total correlation of q(z), estimated by a
discriminator with the density-ratio trick."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.components.layers import positive_int, positive_ints
from vaezoo.components.objectives.discriminators import CodeDiscriminator
from vaezoo.core import VAE, Objective, VAEOutput
from vaezoo.core.estimators import elbo_terms


def permute_dims(z: torch.Tensor) -> torch.Tensor:
    """Each latent dimension shuffled independently across the batch: draws of prod_j q(z_j)."""
    order = torch.argsort(torch.rand(z.shape, device=z.device), dim=0)
    return torch.gather(z, 0, order)


def density_ratio(logits: torch.Tensor) -> torch.Tensor:
    """log D(z) / (1 - D(z)) per example for a 2-logit discriminator (class 0: q(z), class 1: prod_j q(z_j)),
    the estimate of log q(z) - log prod_j q(z_j) whose mean is the total correlation."""
    return logits[:, 0] - logits[:, 1]


class FactorVAE(Objective):
    """E[log p(x|z)] - KL(q(z|x) || p(z)) - gamma TC(q(z)), TC by a discriminator trained to tell the batch's
    codes from codes with each dimension shuffled across the batch (`adversary_steps` updates per VAE step)."""

    def __init__(
        self, latent_dim: int, gamma: float = 6.0, hidden_dims: list[int] | tuple[int, ...] = (1000, 1000),
        steps: int = 1,
    ) -> None:
        super().__init__()
        if not gamma >= 0:
            raise ValueError(f"gamma must be non-negative, got {gamma}")
        self.gamma = float(gamma)
        self.adversary_steps = positive_int("steps", steps)
        self.discriminator = CodeDiscriminator(latent_dim, positive_ints("hidden_dims", hidden_dims), 2)

    def adversary(self) -> nn.Module:
        return self.discriminator

    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        out = elbo_terms(vae, x, y)
        tc = density_ratio(self.discriminator(out.z))
        out.loss = -(out.recon - out.kl).mean() + self.gamma * tc.mean()
        out.terms["tc"] = tc
        return out

    def adversary_loss(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None, out: VAEOutput) -> torch.Tensor:
        z = out.z.detach()
        joint, product = self.discriminator(z), self.discriminator(permute_dims(z))
        zeros = torch.zeros(len(z), dtype=torch.long, device=z.device)
        return 0.5 * (F.cross_entropy(joint, zeros) + F.cross_entropy(product, zeros + 1))
