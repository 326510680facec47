"""The VAE module: one encoder, posterior, decoder, prior, likelihood and objective, wired together."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.core.likelihood import Likelihood
from vaezoo.core.objective import Objective
from vaezoo.core.output import VAEOutput
from vaezoo.core.posterior import Posterior
from vaezoo.core.prior import Prior


class VAE(nn.Module):
    """A variational autoencoder assembled from parts; `forward` returns the objective's output.

    The encoder maps x to the posterior's parameters (for the Gaussian posterior, mu and logvar); the posterior
    draws z and the KL against the prior; the decoder maps z to the likelihood's parameters. A conditional VAE
    (`num_classes` > 0) gives its encoder and decoder the one-hot label as a second argument; every method that
    encodes or decodes then takes integer labels `y`.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        prior: Prior,
        likelihood: Likelihood,
        objective: Objective,
        *,
        posterior: Posterior,
        input_shape: tuple[int, ...],
        latent_dim: int,
        num_classes: int = 0,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.posterior = posterior
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

    def labels(self, y: torch.Tensor | None, lead: tuple[int, ...] | None = None) -> list[torch.Tensor]:
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
        """The objective's output; the posterior's own loss (`terms["posterior_loss"]`, e.g. VQ's codebook and
        commitment terms) is added to `loss` here, so that every objective trains it."""
        out = self.objective(self, x) if y is None else self.objective(self, x, y)
        if "posterior_loss" in out.terms:
            out.loss = out.loss + out.terms["posterior_loss"].mean()
        return out

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """The posterior's parameters for x: for the Gaussian posterior (mu, logvar), each [B, latent_dim]."""
        return tuple(self.encoder(x, *self.labels(y)))

    def decode_params(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's parameters for z of shape [..., latent_dim]; labels [B] broadcast over sample dims."""
        lead = tuple(z.shape[:-1])
        params = self.decoder(z.reshape(-1, z.shape[-1]), *self.labels(y, lead))
        return params.view(*lead, *params.shape[1:])

    def posterior_mean(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The posterior's point summary of each input's code, [B, latent_dim]."""
        return self.posterior.mean(self.encode(x, y), self.prior)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's mean for latent codes z: what a person looks at."""
        return self.likelihood.mean(self.decode_params(z, y))

    @torch.no_grad()
    def sample(self, n: int, y: int | torch.Tensor | None = None, temperature: float = 1.0) -> torch.Tensor:
        """Generate n inputs by decoding draws of the prior; a conditional VAE draws label y (an int or [n]
        labels), or cycles through the classes when y is None. temperature < 1 pulls the draws towards the
        prior's centre (its mean where it is Gaussian, else the mean of many draws), > 1 pushes them out."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if self.conditional:
            y = torch.arange(n) % self.num_classes if y is None else torch.as_tensor(y).expand(n)
        return self.decode(self.prior.tempered_sample(n, temperature).to(self._anchor()), y)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decode the posterior's point summary of each input."""
        return self.decode(self.posterior_mean(x, y), y)
