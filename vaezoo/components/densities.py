"""Log-densities of diagonal Gaussians, shared by the priors and the objectives that need them."""
from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2.0 * math.pi)


def normal_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) per element; the arguments broadcast."""
    return -0.5 * ((z - mu) ** 2 * torch.exp(-logvar) + logvar + LOG_2PI)


def diagonal_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dimension."""
    return normal_log_density(z, mu, logvar).sum(-1)
