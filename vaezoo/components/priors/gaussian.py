"""Diagonal Gaussian priors, whose KL the fused operator computes in closed form."""
from __future__ import annotations

import torch
from torch import nn

from vaezoo.components.densities import LOG_2PI, normal_log_density
from vaezoo.core import Prior


class StandardNormal(Prior):
    """N(0, I): the analytic KL of the fused operator, with no parameters."""

    is_standard_normal = True
    factorized = True

    def __init__(self, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # follows .to(device/dtype)

    def sample(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self._anchor.device, dtype=self._anchor.dtype)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.log_prob_per_dim(z).sum(-1)

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * (z * z + LOG_2PI)

    def gaussian(self) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(self.latent_dim, device=self._anchor.device, dtype=self._anchor.dtype)
        return zeros, zeros


class LearnedDiagonal(Prior):
    """N(m, diag(exp(s))) with m and s learned; the fused operator's analytic KL for a shared Gaussian prior."""

    factorized = True

    def __init__(self, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.mu = nn.Parameter(torch.zeros(latent_dim))
        self.logvar = nn.Parameter(torch.zeros(latent_dim))

    def sample(self, n: int) -> torch.Tensor:
        eps = torch.randn(n, self.latent_dim, device=self.mu.device, dtype=self.mu.dtype)
        return self.mu + torch.exp(0.5 * self.logvar) * eps

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.log_prob_per_dim(z).sum(-1)

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        return normal_log_density(z, self.mu, self.logvar)

    def gaussian(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu, self.logvar
