"""A masked autoregressive flow (MAF; Papamakarios et al., 2017) fitted to posterior means, built from the MADE
networks of the IAF posterior (vaezoo.components.autoregressive): exact density for fitting, sequential inversion
for sampling."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from vaezoo.components.autoregressive import MADE
from vaezoo.components.layers import positive_int, positive_ints
from vaezoo.components.samplers.minibatch import Standardize, fit_by_gradient
from vaezoo.core import Sampler
from vaezoo.core.sampler import Progress

LOG_2PI = math.log(2.0 * math.pi)


class AutoregressiveAffine(nn.Module):
    """u_d = (z_d - m_d(z_<d)) exp(-a_d(z_<d)), one MADE for m and a; starts as the identity (zero output layer)."""

    def __init__(self, dim: int, hidden_dims: Sequence[int]) -> None:
        super().__init__()
        self.made = MADE(dim, 0, hidden_dims, outputs=2)
        nn.init.zeros_(self.made.out.weight)
        nn.init.zeros_(self.made.out.bias)

    def _shift_log_scale(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shift, raw = self.made(z)
        return shift, 3.0 * torch.tanh(raw / 3.0)  # log-scales bounded to (-3, 3) per layer: a stable fit

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z -> (u, log|det du/dz|)."""
        shift, log_scale = self._shift_log_scale(z)
        return (z - shift) * torch.exp(-log_scale), -log_scale.sum(-1)

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        """u -> z one dimension at a time: z_d needs z_<d."""
        z = torch.zeros_like(u)
        for d in range(u.shape[-1]):
            shift, log_scale = self._shift_log_scale(z)
            z[:, d] = u[:, d] * torch.exp(log_scale[:, d]) + shift[:, d]
        return z


class FlowSampler(Sampler):
    """`layers` autoregressive affine layers over a standard-normal base, the order of the dimensions reversed
    between layers, on standardized posterior means; fitted by maximum likelihood with Adam."""

    default_epochs = 20

    def __init__(self, latent_dim: int, layers: int = 5, hidden_dims: Sequence[int] = (128, 128),
                 batch_size: int = 256, lr: float = 1e-3) -> None:
        super().__init__(latent_dim)
        hidden_dims = positive_ints("hidden_dims", hidden_dims)
        self.batch_size, self.lr = positive_int("batch_size", batch_size), float(lr)
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.scale = Standardize(latent_dim)
        self.layers = nn.ModuleList(AutoregressiveAffine(latent_dim, hidden_dims)
                                    for _ in range(positive_int("layers", layers)))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z), [N] (the standardization's Jacobian included)."""
        u, log_det = self.scale(z), -torch.log(self.scale.std).sum().expand(len(z))
        for k, layer in enumerate(self.layers):
            u, layer_log_det = layer(u.flip(-1) if k else u)
            log_det = log_det + layer_log_det
        return -0.5 * (u.pow(2) + LOG_2PI).sum(-1) + log_det

    def fit(self, codes: torch.Tensor, epochs: int, progress: Progress | None = None) -> dict[str, float]:
        codes = codes.float()
        self.scale.set_from(codes)
        figures = fit_by_gradient(self, lambda z: -self.log_prob(z).mean(), codes, epochs, self.batch_size, self.lr,
                                  progress)
        with torch.no_grad():
            return {"mean_log_likelihood": float(self.log_prob(codes).mean()), **figures}

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> torch.Tensor:
        u = temperature * torch.randn(n, self.latent_dim, device=self.scale.mean.device)
        for k in reversed(range(len(self.layers))):
            u = self.layers[k].inverse(u)
            u = u.flip(-1) if k else u
        return self.scale.inverse(u)
