"""Posterior: q(z|x) read from the encoder's output; it draws z, with log q(z|x) and the KL against a prior."""
from __future__ import annotations

import abc

import torch
from torch import nn

from vaezoo.core.latent import Latent
from vaezoo.core.prior import Prior
from vaezoo.errors import NotAvailableError

#: What a posterior may offer beyond one draw and its KL; objectives and metrics name the ones they need.
FEATURES = {
    "samples": "several draws of z per input, each with log q(z|x) (importance weighting)",
    "kl_per_dim": "the KL split into one term per latent dimension",
    "density": "log q(z_d|x) per dimension of any z under any input's posterior (aggregate-posterior estimates)",
    "moments": "the mean and the per-dimension variance of q(z|x)",
    "kl_parts": "the KL split into its continuous and discrete parts, with the discrete part's largest value",
}


class Posterior(nn.Module, abc.ABC):
    """q(z|x) over `latent_dim` numbers, given the tensors the encoder returns (`param_dims` says their sizes)."""

    #: The name of the family of distributions q belongs to (what `Prior.encodes_with` compares against).
    family: str = "gaussian"
    #: What the prior's `support` must include for the KL to be defined.
    requires: frozenset[str] = frozenset({"euclidean"})
    #: The optimizer step about to be taken; the training loop sets it before each step, for schedules (the
    #: Gumbel-softmax temperature).
    step: int = 0

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
        self.latent_dim = latent_dim

    def param_dims(self) -> tuple[int, ...]:
        """Sizes of the tensors the encoder returns per example (default: mean and log-variance)."""
        return (self.latent_dim, self.latent_dim)

    @abc.abstractmethod
    def draw(self, params: tuple[torch.Tensor, ...], prior: Prior, samples: int | None = None) -> Latent:
        """z ~ q(z|x) (K draws per example with `samples=K`), the KL against `prior` and log q(z|x)."""

    @abc.abstractmethod
    def mean(self, params: tuple[torch.Tensor, ...], prior: Prior) -> torch.Tensor:
        """A point summary of q(z|x), [B, latent_dim]: what reconstructions and latent walks decode."""

    def why_not(self, feature: str, prior: Prior) -> str | None:
        """None when this posterior offers `feature` (a key of FEATURES) together with `prior`, else why not."""
        return f"{type(self).__name__} does not implement it"

    def prior_mismatch(self, prior: Prior) -> str | None:
        """None when `prior` is a density on the space this posterior draws from, else why not."""
        missing = self.requires - prior.support
        if not missing:
            return None
        return f"it needs a prior on {', '.join(sorted(missing))}; the prior is on {', '.join(sorted(prior.support))}"

    def require(self, feature: str, prior: Prior) -> None:
        """Raise NotAvailableError with the reason when `feature` is not offered with `prior`."""
        reason = self.why_not(feature, prior)
        if reason is not None:
            raise NotAvailableError(f"{FEATURES[feature]} is not available: {reason}")

    def kl_per_dim(self, params: tuple[torch.Tensor, ...], prior: Prior) -> Latent:
        """One draw whose kl is [B, latent_dim]; needs the feature "kl_per_dim"."""
        self.require("kl_per_dim", prior)
        raise NotImplementedError(f"{type(self).__name__} offers kl_per_dim but does not implement it")

    def kl_parts(self, params: tuple[torch.Tensor, ...], prior: Prior) -> Latent:
        """One draw whose kl is [B, 2]: the continuous and the discrete part's KL; needs the feature "kl_parts"."""
        self.require("kl_parts", prior)
        raise NotImplementedError(f"{type(self).__name__} offers kl_parts but does not implement it")

    def discrete_kl_bound(self, prior: Prior) -> float:
        """The largest value the discrete part's KL can take against `prior`; needs the feature "kl_parts"."""
        raise NotImplementedError(f"{type(self).__name__} does not implement discrete_kl_bound")

    def moments(self, params: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """E[z|x] and Var[z_d|x], each [B, latent_dim]; needs the feature "moments"."""
        raise NotImplementedError(f"{type(self).__name__} does not implement moments")

    def log_density(self, z: torch.Tensor, params: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """log q(z_d|x) per dimension, [..., latent_dim], z and params broadcasting; needs the feature "density"."""
        raise NotImplementedError(f"{type(self).__name__} does not implement log_density")
