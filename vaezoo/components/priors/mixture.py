"""Mixtures of diagonal Gaussians: the learnable mixture-of-Gaussians prior and the shared mixture density."""
from __future__ import annotations

import torch
from torch import nn

from vaezoo.components.densities import LOG_2PI
from vaezoo.components.layers import positive_int
from vaezoo.core import Prior


def mixture_log_prob(
    z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor, log_weights: torch.Tensor
) -> torch.Tensor:
    """log sum_k w_k N(z; means[k], diag(exp(logvars[k]))) for z [..., D], components [K, D], weights [K].

    The squared distances are expanded into matrix products, so memory is [..., K], not [..., K, D]: the
    importance-weighted NLL evaluates thousands of z per example against hundreds of components.
    """
    precision = torch.exp(-logvars)
    quadratic = (z * z) @ precision.T - 2.0 * z @ (means * precision).T + (means * means * precision).sum(-1)
    log_norm = -0.5 * (logvars.sum(-1) + means.shape[-1] * LOG_2PI)
    return torch.logsumexp(log_norm - 0.5 * quadratic + log_weights, dim=-1)


def mixture_sample(
    n: int, means: torch.Tensor, logvars: torch.Tensor, log_weights: torch.Tensor
) -> torch.Tensor:
    """n draws of the mixture: a component by its weight, then its Gaussian."""
    k = torch.multinomial(torch.softmax(log_weights, dim=0), n, replacement=True)
    return means[k] + torch.exp(0.5 * logvars[k]) * torch.randn_like(means[k])


class MixtureOfGaussians(Prior):
    """A learnable mixture of K diagonal Gaussians (means, variances and weights); KL by Monte Carlo."""

    def __init__(self, latent_dim: int, components: int = 10, spread: float = 1.0) -> None:
        super().__init__(latent_dim)
        components = positive_int("components", components)
        if not spread >= 0:
            raise ValueError(f"spread must be non-negative, got {spread}")
        self.means = nn.Parameter(spread * torch.randn(components, latent_dim))
        self.logvars = nn.Parameter(torch.zeros(components, latent_dim))
        self.logits = nn.Parameter(torch.zeros(components))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return mixture_log_prob(z, self.means, self.logvars, torch.log_softmax(self.logits, dim=0))

    def sample(self, n: int) -> torch.Tensor:
        return mixture_sample(n, self.means, self.logvars, self.logits)
