"""The VAE module: wires one encoder, decoder, prior, likelihood and objective together."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.parts import Latent, Likelihood, Objective, Prior

__all__ = ["VAE", "VAEOutput", "Latent"]


@dataclass
class VAEOutput:
    """What one pass over a batch produced. recon, kl and elbo are per example, in nats.

    `terms` holds what a particular objective adds (e.g. the importance-weighted bound, TC or MMD terms).
    """

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    params: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def elbo(self) -> torch.Tensor:
        return self.recon - self.kl


class VAE(nn.Module):
    """A variational autoencoder assembled from parts; `forward` returns the objective's output.

    A conditional VAE (`num_classes` > 0) gives its encoder and decoder the one-hot label as a second
    argument; every method that encodes or decodes then takes integer labels `y`.
    """

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
        num_classes: int = 0,
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
        self.num_classes = num_classes
        self.config = dict(config or {})

    @property
    def conditional(self) -> bool:
        """True when the encoder and decoder take a label."""
        return self.num_classes > 0

    def _anchor(self) -> torch.Tensor:
        return next(self.parameters())

    def _labels(self, y: torch.Tensor | None, lead: tuple[int, ...] | None = None) -> list[torch.Tensor]:
        """[] for an unconditional VAE, else [one-hot labels], broadcast over `lead` dims and flattened."""
        if not self.conditional:
            if y is not None:
                raise ValueError("this VAE is not conditional: it takes no labels y")
            return []
        if y is None:
            raise ValueError(f"this conditional VAE needs labels y: integers in [0, {self.num_classes})")
        y = torch.as_tensor(y, device=self._anchor().device).long()
        if y.numel() and (y.min() < 0 or y.max() >= self.num_classes):
            raise ValueError(f"labels must be integers in [0, {self.num_classes}), got {y.min()}..{y.max()}")
        onehot = F.one_hot(y, self.num_classes).to(self._anchor().dtype)
        if lead is not None:
            onehot = onehot.expand(*lead, self.num_classes).reshape(-1, self.num_classes)
        return [onehot]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        return self.objective(self, x) if y is None else self.objective(self, x, y)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's Gaussian: (mu, logvar), each [B, latent_dim]."""
        return self.encoder(x, *self._labels(y))

    def decode_params(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's parameters for z of shape [..., latent_dim]; labels [B] broadcast over sample dims."""
        lead = tuple(z.shape[:-1])
        params = self.decoder(z.reshape(-1, z.shape[-1]), *self._labels(y, lead))
        return params.view(*lead, *params.shape[1:])

    def latent(
        self, mu: torch.Tensor, logvar: torch.Tensor, samples: int | None = None, *, kl_per_dim: bool = False
    ) -> Latent:
        """Draw z through the fused operator, the prior choosing the KL: analytic where it can, else Monte-Carlo."""
        return self.prior.draw(mu, logvar, samples=samples, kl_per_dim=kl_per_dim)

    def elbo_terms(self, x: torch.Tensor, y: torch.Tensor | None = None, *, kl_per_dim: bool = False) -> VAEOutput:
        """One-sample ELBO terms with beta = 1; loss is the negative mean ELBO.

        With `kl_per_dim`, terms["kl_per_dim"] holds the [B, latent_dim] KL terms that `kl` sums.
        """
        mu, logvar = self.encode(x, y)
        latent = self.latent(mu, logvar, kl_per_dim=kl_per_dim)
        params = self.decode_params(latent.z, y)
        recon = self.likelihood.log_prob(params, x)
        kl = latent.kl.sum(-1) if kl_per_dim else latent.kl
        terms = {"kl_per_dim": latent.kl} if kl_per_dim else {}
        return VAEOutput(-(recon - kl).mean(), recon, kl, latent.z, mu, logvar, params, terms)

    def iw_terms(self, x: torch.Tensor, samples: int, y: torch.Tensor | None = None) -> VAEOutput:
        """The K-sample importance-weighted bound log mean_k p(x, z_k) / q(z_k|x), per example.

        terms["iw_bound"] is the bound [B] and terms["log_w"] the log weights [K, B]; loss is the negative mean
        bound; recon and kl are averaged over the K samples (their difference is the K-sample ELBO estimate);
        z is [K, B, latent_dim].
        """
        mu, logvar = self.encode(x, y)
        latent = self.latent(mu, logvar, samples)
        params = self.decode_params(latent.z, y)
        flat_x = x.expand(samples, *x.shape).flatten(0, 1)
        recon = self.likelihood.log_prob(params.flatten(0, 1), flat_x).view(samples, -1)
        kl = latent.log_q - self.prior.log_prob(latent.z)
        log_w = recon - kl
        bound = torch.logsumexp(log_w, dim=0) - math.log(samples)
        terms = {"iw_bound": bound, "log_w": log_w}
        return VAEOutput(-bound.mean(), recon.mean(0), kl.mean(0), latent.z, mu, logvar, params, terms)

    def posterior_mean(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """E[z|x], [B, latent_dim]."""
        return self.prior.posterior_mean(*self.encode(x, y))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's mean for latent codes z: what a person looks at."""
        return self.likelihood.mean(self.decode_params(z, y))

    @torch.no_grad()
    def sample(self, n: int, y: int | torch.Tensor | None = None, temperature: float = 1.0) -> torch.Tensor:
        """Generate n inputs by decoding draws of the prior; a conditional VAE draws label y (an int or [n]
        labels), or cycles through the classes when y is None. temperature < 1 pulls the draws towards the
        prior's centre (its mean where it is Gaussian, else the mean of many draws), > 1 pushes them out."""
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if self.conditional:
            y = torch.arange(n) % self.num_classes if y is None else torch.as_tensor(y).expand(n)
        z = self.prior.sample(n).to(self._anchor())
        if temperature != 1.0:
            gaussian = self.prior.gaussian()
            centre = gaussian[0].to(z) if gaussian is not None else self.prior.sample(4096).to(z).mean(0)
            z = centre + temperature * (z - centre)
        return self.decode(z, y)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decode the posterior mean of each input."""
        return self.decode(self.posterior_mean(x, y), y)
