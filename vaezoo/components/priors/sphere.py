"""The uniform distribution on the unit hypersphere S^{d-1}: the prior of the von Mises-Fisher posterior."""
from __future__ import annotations

import math

import torch

from vaezoo.core import Prior


def log_sphere_area(d: int) -> float:
    """log of the surface area of S^{d-1} in R^d: log(2 pi^(d/2) / Gamma(d/2))."""
    return math.log(2.0) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)


class UniformSphere(Prior):
    """Uniform on S^{d-1} (d = latent_dim): density 1 / area with respect to the surface measure.

    `log_prob` is that constant for any z (codes are assumed to lie on the sphere, as every vMF draw does);
    `sample` normalizes Gaussian draws. Not a density on R^d, so posteriors that need a Euclidean prior are
    refused with it.
    """

    support = frozenset({"sphere"})

    def __init__(self, latent_dim: int) -> None:
        super().__init__(latent_dim)
        if latent_dim < 2:
            raise ValueError(f"the hypersphere prior needs latent_dim >= 2 (S^(d-1) in R^d), got {latent_dim}")
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def sample(self, n: int) -> torch.Tensor:
        g = torch.randn(n, self.latent_dim, device=self._anchor.device, dtype=self._anchor.dtype)
        return g / g.norm(dim=-1, keepdim=True)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return torch.full(z.shape[:-1], -log_sphere_area(self.latent_dim), device=z.device, dtype=z.dtype)
