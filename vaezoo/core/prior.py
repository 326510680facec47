"""Prior: p(z), with sampling, its density and, where it has one, a closed form for the KL."""
from __future__ import annotations

import abc

import torch
from torch import nn


class Prior(nn.Module, abc.ABC):
    """p(z) over vectors of `latent_dim` numbers. It does not draw from q(z|x): posteriors do that."""

    #: The latent spaces this prior is a density on; a posterior lists what it needs in `Posterior.requires`.
    support: frozenset[str] = frozenset({"euclidean"})
    #: True when log p(z) is a sum over latent dimensions: `log_prob_per_dim` then gives the terms, and the
    #: KL splits per dimension (by Monte Carlo when there is no closed form).
    factorized: bool = False
    #: True only for exactly N(0, I): the fused operator then uses its parameter-free analytic KL.
    is_standard_normal: bool = False
    #: The posterior family whose parameters this prior reads from the VAE's encoder (the VampPrior's mixture
    #: of q(z|u_k)), or None; create_model refuses a posterior of another family.
    encodes_with: str | None = None
    #: True when the prior is fitted to the codes the encoder gives the training set rather than learned by
    #: the loss: after each epoch's training the trainer sums `code_statistics` of the posterior means over
    #: the training set and calls `refit` (VQ-VAE's categorical prior over codes).
    refits: bool = False

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
        self.latent_dim = latent_dim

    @abc.abstractmethod
    def sample(self, n: int) -> torch.Tensor:
        """Draw n latent vectors, shape [n, latent_dim], on the prior's device and dtype."""

    @abc.abstractmethod
    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z), summed over the last (latent) dimension; any leading dims."""

    def tempered_sample(self, n: int, temperature: float = 1.0) -> torch.Tensor:
        """n draws pulled towards the prior's centre (temperature < 1) or pushed out (> 1): its mean where it is
        Gaussian, else the mean of many draws."""
        z = self.sample(n)
        if temperature != 1.0:
            gaussian = self.gaussian()
            centre = gaussian[0].to(z) if gaussian is not None else self.sample(4096).to(z).mean(0)
            z = centre + temperature * (z - centre)
        return z

    def gaussian(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(mu, logvar) of a diagonal Gaussian prior for the analytic KL, or None when there is no closed form."""
        return None

    def code_statistics(self, z: torch.Tensor) -> torch.Tensor:
        """Statistics of posterior means z [..., latent_dim] that sum over batches, for `refit`."""
        raise NotImplementedError(f"{type(self).__name__} is not refitted to codes")

    def refit(self, statistics: torch.Tensor) -> None:
        """Set the prior from `code_statistics` summed over the training set."""
        raise NotImplementedError(f"{type(self).__name__} is not refitted to codes")

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z_d) per dimension, [..., latent_dim]; only for a `factorized` prior."""
        raise NotImplementedError(f"{type(self).__name__} is not factorized over latent dimensions")
