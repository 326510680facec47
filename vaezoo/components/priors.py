"""Built-in priors p(z)."""
from __future__ import annotations

import math

import torch
from torch import nn

from vaezoo.hookspecs import hookimpl
from vaezoo.parts import Prior

LOG_2PI = math.log(2.0 * math.pi)


class StandardNormal(Prior):
    """N(0, I): the analytic KL of the fused operator, with no parameters."""

    is_standard_normal = True

    def __init__(self, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # follows .to(device/dtype)

    def sample(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self._anchor.device, dtype=self._anchor.dtype)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * (z * z + LOG_2PI).sum(-1)

    def gaussian(self) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(self.latent_dim, device=self._anchor.device, dtype=self._anchor.dtype)
        return zeros, zeros


@hookimpl
def vaezoo_register_priors(register) -> None:
    register("standard-normal", StandardNormal)
