"""The VAE module: wires one encoder, decoder, prior, likelihood and objective together."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vaezoo import ops
from vaezoo.parts import Likelihood, Objective, Prior


@dataclass
class VAEOutput:
    """What one pass over a batch produced. recon, kl and elbo are per example, in nats."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    params: torch.Tensor

    @property
    def elbo(self) -> torch.Tensor:
        return self.recon - self.kl


@dataclass
class Latent:
    """A reparameterized draw: z, its KL term per example, and log q(z|x) when it was asked for."""

    z: torch.Tensor
    kl: torch.Tensor
    log_q: torch.Tensor | None


class VAE(nn.Module):
    """A variational autoencoder assembled from parts; `forward` returns the objective's output."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        prior: Prior,
        likelihood: Likelihood,
        objective: Objective,
        *,
        input_shape: tuple[int, ...],
        latent_dim: int,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior
        self.likelihood = likelihood
        self.objective = objective
        self.input_shape = tuple(input_shape)
        self.latent_dim = latent_dim
        self.config = dict(config or {})

    def _anchor(self) -> torch.Tensor:
        return next(self.parameters())

    def forward(self, x: torch.Tensor) -> VAEOutput:
        return self.objective(self, x)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior q(z|x): (mu, logvar), each [B, latent_dim]."""
        return self.encoder(x)

    def latent(self, mu: torch.Tensor, logvar: torch.Tensor, samples: int | None = None) -> Latent:
        """Draw z through the fused operator, with the KL analytic where the prior allows, else Monte-Carlo."""
        if self.prior.is_standard_normal:
            z, kl = ops.reparameterize(mu, logvar, samples=samples)
            return Latent(z, kl, None)
        gaussian = self.prior.gaussian()
        if gaussian is not None:
            z, kl = ops.reparameterize(mu, logvar, *gaussian, samples=samples)
            return Latent(z, kl, None)
        z, _, log_q = ops.reparameterize(mu, logvar, samples=samples, log_q=True)
        return Latent(z, log_q - self.prior.log_prob(z), log_q)

    def elbo_terms(self, x: torch.Tensor) -> VAEOutput:
        """One-sample ELBO terms with beta = 1; loss is the negative mean ELBO."""
        mu, logvar = self.encode(x)
        latent = self.latent(mu, logvar)
        params = self.decoder(latent.z)
        recon = self.likelihood.log_prob(params, x)
        return VAEOutput(-(recon - latent.kl).mean(), recon, latent.kl, latent.z, mu, logvar, params)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The likelihood's mean for latent codes z: what a person looks at."""
        return self.likelihood.mean(self.decoder(z))

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Generate n inputs by decoding draws of the prior."""
        return self.decode(self.prior.sample(n).to(self._anchor()))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean of each input."""
        mu, _ = self.encode(x)
        return self.decode(mu)
