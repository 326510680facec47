"""Base classes of the parts that are not plain networks: priors, likelihoods and objectives."""
from __future__ import annotations

import abc
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from vaezoo.model import VAE, VAEOutput


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
        """log p(z), summed over the last (latent) dimension."""

    def gaussian(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(mu, logvar) of a diagonal Gaussian prior for the analytic KL, or None for a Monte-Carlo KL."""
        return None


class Likelihood(nn.Module, abc.ABC):
    """p(x | decoder output) for inputs of one shape."""

    #: True when the likelihood is for {0, 1} data: training binarizes the pixels.
    binary_data: bool = False

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

    @abc.abstractmethod
    def forward(self, vae: VAE, x: torch.Tensor) -> VAEOutput:
        """Return the output of one training step on x, with `loss` set."""
