"""The deterministic posterior of a plain autoencoder: z is the encoder's output itself (a point mass), with no
KL term, so the ELBO objective trains it on reconstruction alone; it is sampled through a post-hoc sampler."""
from __future__ import annotations

import torch

from vaezoo.core import Latent, Posterior, Prior


class DeterministicPosterior(Posterior):
    """q(z|x) = delta(z - e(x)): z = e(x), KL 0 and log q 0 by convention (a point mass has no density, so the
    "ELBO" of a model with this posterior is its reconstruction term, not a bound on log p(x)). Its moments are
    exact: the mean e(x) and zero variance. Any prior on R^d is accepted, as the distribution `vaezoo sample`
    draws from before a sampler is fitted (a deterministic autoencoder's codes need not follow it)."""

    family = "deterministic"

    def param_dims(self) -> tuple[int, ...]:
        return (self.latent_dim,)

    def draw(self, params: tuple[torch.Tensor, ...], prior: Prior, samples: int | None = None) -> Latent:
        z = params[0]
        kl = z.new_zeros(z.shape[:-1])
        if samples is None:
            return Latent(z, kl, kl)
        return Latent(z.expand(samples, *z.shape), kl, kl.expand(samples, *kl.shape))

    def mean(self, params: tuple[torch.Tensor, ...], prior: Prior) -> torch.Tensor:
        return params[0]

    def why_not(self, feature: str, prior: Prior) -> str | None:
        if feature == "kl_parts":
            return "a deterministic posterior has no KL term to split"
        if feature == "moments":
            return None
        if feature == "kl_per_dim":
            return "a deterministic posterior has no KL term to split"
        return "a deterministic posterior is a point mass, with no density log q(z|x)"

    def moments(self, params: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        return params[0], torch.zeros_like(params[0])
