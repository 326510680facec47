"""A normalizing flow on top of the Gaussian posterior: the base that IAF, planar and radial flows share."""
from __future__ import annotations

import abc

import torch

from vaezoo import ops
from vaezoo.core import Latent, Posterior, Prior


class GaussianFlowPosterior(Posterior):
    """z_0 ~ N(mu, diag(exp(logvar))) by the fused operator, then an invertible flow conditioned on the encoder's
    third tensor (a context, or the flow's own parameters): the encoder returns (mu, logvar, that tensor).

    log q(z_K|x) = log N(z_0) - log|det dz_K/dz_0|; the KL is Monte Carlo, log q(z_K|x) - log p(z_K), against any
    prior with a density on R^d. Several draws are offered; the flow mixes the dimensions, so the KL does not
    split per dimension, q has no per-dimension density and no closed-form moments.
    """

    @abc.abstractmethod
    def flow(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z_K and log|det dz_K/dz_0| for z_0 [..., D] and the encoder's third tensor h [B, ...]."""

    def draw(self, params: tuple[torch.Tensor, ...], prior: Prior, samples: int | None = None) -> Latent:
        mu, logvar, h = params
        z0, _, log_q0 = ops.reparameterize(mu, logvar, samples=samples, log_q=True)
        z, log_det = self.flow(z0, h)
        log_q = log_q0 - log_det
        return Latent(z, log_q - prior.log_prob(z), log_q)

    def mean(self, params: tuple[torch.Tensor, ...], prior: Prior) -> torch.Tensor:
        """The flow applied to the Gaussian's mean."""
        return self.flow(params[0], params[2])[0]

    def why_not(self, feature: str, prior: Prior) -> str | None:
        if feature == "kl_parts":
            return "the flow's posterior has no discrete part"
        if feature == "kl_per_dim":
            return "the flow mixes the latent dimensions, so its Monte-Carlo KL does not split per dimension"
        if feature == "density":
            return "the flow mixes the latent dimensions, so q(z|x) has no per-dimension density"
        if feature == "moments":
            return "the flow's output has no closed-form mean and variance"
        return None
