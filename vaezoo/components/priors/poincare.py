"""The wrapped normal at the origin of the Poincaré ball: the prior of the wrapped-normal posterior."""
from __future__ import annotations

import math

import torch

from vaezoo.components.densities import diagonal_log_prob
from vaezoo.components.poincare import curvature as valid_curvature, wrapped_normal_log_density
from vaezoo.core import Prior


class PoincareNormal(Prior):
    """p(z) = the wrapped normal N^W(0, scale^2 I) on the ball of curvature -`curvature`, on codes given as
    log_0(z) (the wrapped-normal posterior's codes): a code t is the point reached by v = 2t, so its log density
    with respect to the Riemannian volume is log N(2t; 0, scale^2 I) - (d - 1) log(sinh(sqrt(c) r) / (sqrt(c) r)),
    r = 2|t|. Not a density on R^d, so Euclidean posteriors are refused with it.
    """

    support = frozenset({"poincare"})

    def __init__(self, latent_dim: int, curvature: float = 1.0, scale: float = 1.0) -> None:
        super().__init__(latent_dim)
        self.c = valid_curvature(curvature)
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.register_buffer("logvar", torch.full((latent_dim,), 2 * math.log(scale)), persistent=False)

    def sample(self, n: int) -> torch.Tensor:
        return 0.5 * torch.exp(0.5 * self.logvar) * torch.randn(n, self.latent_dim, device=self.logvar.device,
                                                                dtype=self.logvar.dtype)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        v = 2 * z
        return wrapped_normal_log_density(v, diagonal_log_prob(v, torch.zeros_like(self.logvar), self.logvar), self.c)
