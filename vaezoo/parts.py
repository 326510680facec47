"""Base classes of the parts that are not plain networks: priors, likelihoods and objectives."""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from vaezoo import ops

if TYPE_CHECKING:
    from vaezoo.model import VAE, VAEOutput


@dataclass
class Latent:
    """A reparameterized draw: z, its KL term per example, and log q(z|x) (from the same operator pass).

    With `samples=K`, z is [K, B, D] and log_q [K, B]; kl is [B] when analytic, [K, B] when Monte-Carlo.
    With `kl_per_dim`, kl is [B, D]: one term per latent dimension.
    """

    z: torch.Tensor
    kl: torch.Tensor
    log_q: torch.Tensor


class Prior(nn.Module, abc.ABC):
    """p(z) over vectors of `latent_dim` numbers."""

    #: True when p(z) is N(0, I): the fused operator then uses its parameter-free analytic KL.
    is_standard_normal: bool = False

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive int, got {latent_dim}")
        self.latent_dim = latent_dim

    @abc.abstractmethod
    def sample(self, n: int) -> torch.Tensor:
        """Draw n latent vectors, shape [n, latent_dim]."""

    @abc.abstractmethod
    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z), summed over the last (latent) dimension; any leading dims."""

    def gaussian(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(mu, logvar) of a diagonal Gaussian prior for the analytic KL, or None for a Monte-Carlo KL."""
        return None

    def draw(
        self,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        *,
        samples: int | None = None,
        kl_per_dim: bool = False,
    ) -> Latent:
        """Draw z from the encoder's Gaussian through the fused operator, with the KL against this prior.

        The KL is analytic for N(0, I) and for `gaussian()` priors, else log q(z|x) - log p(z) from the same
        pass. `kl_per_dim` (analytic priors, one sample) keeps one KL term per latent dimension, for free bits.
        """
        gaussian = None if self.is_standard_normal else self.gaussian()
        if gaussian is None and not self.is_standard_normal:
            if kl_per_dim:
                raise ValueError(f"{type(self).__name__} has no closed-form KL to split per latent dimension")
            z, _, log_q = ops.reparameterize(mu, logvar, samples=samples, log_q=True)
            return Latent(z, log_q - self.log_prob(z), log_q)
        prior = [] if gaussian is None else list(gaussian)
        if not kl_per_dim:
            return Latent(*ops.reparameterize(mu, logvar, *prior, samples=samples, log_q=True))
        if samples is not None:
            raise ValueError("kl_per_dim draws one sample per example; it does not take samples")
        # one operator call on [B*D, 1] views: its per-example KL is then the KL of each dimension
        columns = [t.expand_as(mu).reshape(-1, 1) for t in (mu, logvar, *prior)]
        z, kl, log_q = ops.reparameterize(*columns, log_q=True)
        return Latent(z.view_as(mu), kl.view_as(mu), log_q.view_as(mu).sum(-1))

    def posterior_mean(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """E[z|x] under the posterior this prior draws from: the encoder's mean unless `draw` reshapes it."""
        return mu


class Likelihood(nn.Module, abc.ABC):
    """p(x | decoder output) for inputs of one shape."""

    #: True when the likelihood is for {0, 1} data: training binarizes the pixels.
    binary_data: bool = False
    #: True when log_prob is a log-probability of discrete values: held-out results then include bits/dim.
    discrete: bool = False

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)

    def param_shape(self) -> tuple[int, ...]:
        """Shape of the decoder output this likelihood reads, per example."""
        return self.input_shape

    @abc.abstractmethod
    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | params) per example, shape [B]."""

    @abc.abstractmethod
    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The expected x under p(x | params): what `decode` shows."""


class Objective(nn.Module, abc.ABC):
    """Turns a VAE and a batch into a loss (and the terms it is made of)."""

    #: The optimizer step about to be taken; the training loop sets it before each step, for schedules.
    step: int = 0

    @abc.abstractmethod
    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        """Return the output of one training step on x (and labels y for a conditional VAE), with `loss` set."""
