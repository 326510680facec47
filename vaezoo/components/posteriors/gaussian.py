"""The diagonal Gaussian posterior, drawn by the fused reparameterize + KL operator."""
from __future__ import annotations

import math

import torch

from vaezoo import ops
from vaezoo.components.densities import normal_log_density
from vaezoo.core import Latent, Posterior, Prior


def closed_form(prior: Prior) -> list[torch.Tensor] | None:
    """The prior's tensors for the operator's analytic KL ([] for N(0, I)), or None for a Monte-Carlo KL."""
    if prior.is_standard_normal:
        return []
    gaussian = prior.gaussian()
    return None if gaussian is None else list(gaussian)


class GaussianPosterior(Posterior):
    """N(mu, diag(exp(logvar))) from the encoder's (mu, logvar); z, KL and log q in one fused-operator pass.

    The KL is analytic against N(0, I) and any prior with a closed form, else log q(z|x) - log p(z) of the draw.
    """

    def draw(self, params: tuple[torch.Tensor, ...], prior: Prior, samples: int | None = None) -> Latent:
        mu, logvar = params
        analytic = closed_form(prior)
        if analytic is None:
            z, _, log_q = ops.reparameterize(mu, logvar, samples=samples, log_q=True)
            return Latent(z, log_q - prior.log_prob(z), log_q)
        return Latent(*ops.reparameterize(mu, logvar, *analytic, samples=samples, log_q=True))

    def mean(self, params: tuple[torch.Tensor, ...], prior: Prior) -> torch.Tensor:
        return params[0]

    def why_not(self, feature: str, prior: Prior) -> str | None:
        if feature == "kl_parts":
            return "a Gaussian posterior has no discrete part"
        if feature == "kl_per_dim" and closed_form(prior) is None and not prior.factorized:
            return f"prior {type(prior).__name__} has no closed-form KL and does not factorize over dimensions"
        return None

    def kl_per_dim(self, params: tuple[torch.Tensor, ...], prior: Prior) -> Latent:
        """One operator call on [B*D, 1] views: its per-example KL (and log q) is then that of each dimension.

        The views split each example into D rows, so the noise shard is split alike (ops.rows_split): z is the
        draw `draw` would make, inside a data-parallel or trainer noise shard too."""
        self.require("kl_per_dim", prior)
        mu, logvar = params
        analytic = closed_form(prior)
        columns = [t.expand_as(mu).reshape(-1, 1) for t in (mu, logvar, *(analytic or []))]
        with ops.rows_split(math.prod(mu.shape[1:])):
            z, kl, log_q = ops.reparameterize(*columns, log_q=True)
        z, log_q = z.view_as(mu), log_q.view_as(mu)
        kl = kl.view_as(mu) if analytic is not None else log_q - prior.log_prob_per_dim(z)
        return Latent(z, kl, log_q.sum(-1))

    def moments(self, params: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        return params[0], torch.exp(params[1])

    def log_density(self, z: torch.Tensor, params: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return normal_log_density(z, *params)
