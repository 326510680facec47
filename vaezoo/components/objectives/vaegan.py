"""VAE-GAN (Larsen et al., 2016): a VAE whose decoder is also a GAN generator, and whose reconstruction is
also measured in the discriminator's feature space (the learned similarity)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.components.layers import positive_int
from vaezoo.components.objectives.discriminators import ImageDiscriminator
from vaezoo.core import VAE, Objective, VAEOutput
from vaezoo.core.estimators import elbo_terms


def real_or_fake(logit: torch.Tensor, real: bool) -> torch.Tensor:
    """Per-example binary cross-entropy of a discriminator logit against 'real' or 'fake'."""
    target = torch.ones_like(logit) if real else torch.zeros_like(logit)
    return F.binary_cross_entropy_with_logits(logit, target, reduction="none")


def relaxed_bernoulli(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """A binary-concrete draw (Maddison et al., 2017): sigmoid((logit p + logistic noise) / temperature), in [0, 1],
    above 1/2 with probability p, and binary as the temperature goes to 0; differentiable in p."""
    p = probs.clamp(1e-6, 1 - 1e-6)
    u = torch.rand_like(p).clamp(1e-6, 1 - 1e-6)
    return torch.sigmoid((p.log() - (-p).log1p() + u.log() - (-u).log1p()) / temperature)


class VAEGAN(Objective):
    """-(pixel log-likelihood + feature_weight * feature-space log-likelihood - KL) + gan_weight * (the decoder's
    loss for reconstructions and prior samples against the discriminator). The feature-space term is a unit
    Gaussian on the discriminator's hidden layer, between x and its reconstruction. For binary data the
    discriminator sees relaxed Bernoulli draws of the decoded pixels at `temperature`: shown the probabilities
    themselves, it can tell them from binarized images by their grey values alone, and the decoder learns stripes."""

    def __init__(
        self, input_shape: Sequence[int], gan_weight: float = 1.0, feature_weight: float = 1.0,
        channels: list[int] | tuple[int, ...] = (32, 64), hidden: int = 256, steps: int = 1,
        temperature: float = 0.5,
    ) -> None:
        super().__init__()
        for name, value in (("gan_weight", gan_weight), ("feature_weight", feature_weight)):
            if not value >= 0:
                raise ValueError(f"{name} must be non-negative, got {value}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = float(temperature)
        self.gan_weight, self.feature_weight = float(gan_weight), float(feature_weight)
        self.adversary_steps = positive_int("steps", steps)
        self.discriminator = ImageDiscriminator(input_shape, channels, positive_int("hidden", hidden))

    def adversary(self) -> nn.Module:
        return self.discriminator

    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        out = elbo_terms(vae, x, y)
        reconstruction = self.shown(vae, vae.likelihood.mean(out.params))
        generated = self.shown(vae, vae.decode(vae.prior.sample(len(x)).to(reconstruction), y))
        real_features, _ = self.discriminator(x)
        fake_features, fake_logit = self.discriminator(reconstruction)
        _, generated_logit = self.discriminator(generated)
        feature_recon = -0.5 * (real_features.detach() - fake_features).pow(2).sum(-1)
        fool = real_or_fake(fake_logit, True) + real_or_fake(generated_logit, True)
        out.loss = -(out.recon + self.feature_weight * feature_recon - out.kl).mean() + self.gan_weight * fool.mean()
        out.terms.update(feature_recon=feature_recon, adversarial=fool, reconstruction=reconstruction,
                         generated=generated)
        return out

    def shown(self, vae: VAE, mean: torch.Tensor) -> torch.Tensor:
        """What the discriminator sees of a decoded image: its mean, or for binary data (which training
        binarizes) a relaxed Bernoulli draw of its pixels, so that real and fake images take the same values."""
        return relaxed_bernoulli(mean, self.temperature) if vae.likelihood.binary_data else mean

    def adversary_loss(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None, out: VAEOutput) -> torch.Tensor:
        _, real = self.discriminator(x)
        _, fake = self.discriminator(out.terms["reconstruction"].detach())
        _, generated = self.discriminator(out.terms["generated"].detach())
        return (real_or_fake(real, True) + real_or_fake(fake, False) + real_or_fake(generated, False)).mean()
