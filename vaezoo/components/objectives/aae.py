"""The adversarial autoencoder (Makhzani et al., 2016): q(z) is matched to p(z) by a discriminator on codes."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.components.layers import positive_int, positive_ints
from vaezoo.components.objectives.discriminators import CodeDiscriminator
from vaezoo.core import VAE, Objective, VAEOutput
from vaezoo.core.estimators import elbo_terms


class AdversarialAutoencoder(Objective):
    """E[log p(x|z)] - kl_weight KL - adversarial_weight * (the encoder's loss against a discriminator that
    tells prior draws from the batch's codes). kl_weight = 0 is the AAE with a Gaussian posterior."""

    def __init__(
        self, latent_dim: int, adversarial_weight: float = 1.0, kl_weight: float = 0.0,
        hidden_dims: list[int] | tuple[int, ...] = (512, 512), steps: int = 1,
    ) -> None:
        super().__init__()
        for name, value in (("adversarial_weight", adversarial_weight), ("kl_weight", kl_weight)):
            if not value >= 0:
                raise ValueError(f"{name} must be non-negative, got {value}")
        self.adversarial_weight, self.kl_weight = float(adversarial_weight), float(kl_weight)
        self.adversary_steps = positive_int("steps", steps)
        self.discriminator = CodeDiscriminator(latent_dim, positive_ints("hidden_dims", hidden_dims), 1)

    def adversary(self) -> nn.Module:
        return self.discriminator

    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        out = elbo_terms(vae, x, y)
        logit = self.discriminator(out.z).squeeze(-1)
        fool = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit), reduction="none")
        out.loss = (-out.recon + self.kl_weight * out.kl + self.adversarial_weight * fool).mean()
        out.terms["adversarial"] = fool
        return out

    def adversary_loss(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None, out: VAEOutput) -> torch.Tensor:
        fake = self.discriminator(out.z.detach()).squeeze(-1)
        real = self.discriminator(vae.prior.sample(len(fake)).to(fake)).squeeze(-1)
        return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake))
