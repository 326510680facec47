"""The two-stage VAE (Dai and Wipf, 2019): a second, small VAE fitted to draws of the first model's codes, whose
learned decoder variance gamma lets it match the aggregate posterior that the first model's prior does not."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from vaezoo.components.layers import mlp, positive_int
from vaezoo.components.samplers.minibatch import Standardize, fit_by_gradient
from vaezoo.core import Sampler
from vaezoo.core.sampler import Progress

LOG_2PI = math.log(2.0 * math.pi)


class TwoStageSampler(Sampler):
    """u = standardized code; q(v|u) = N(mu(u), diag exp(logvar(u))), p(v) = N(0, I), p(u|v) = N(g(v), gamma I)
    with gamma learned from `gamma` (below 1, so that the fit does not start where the decoder's noise explains
    all of the unit-variance codes: a collapsed second stage), as the second stage of Dai and Wipf; fitted on the
    negative ELBO with Adam. A draw is g(v) for v ~ N(0, I) (scaled by the temperature), mapped back to the code
    scale."""

    codes = "samples"
    default_epochs = 30

    def __init__(self, latent_dim: int, hidden_dims: Sequence[int] = (256, 256), batch_size: int = 256,
                 lr: float = 1e-3, gamma: float = 0.1) -> None:
        super().__init__(latent_dim)
        self.batch_size, self.lr = positive_int("batch_size", batch_size), float(lr)
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.scale = Standardize(latent_dim)
        body, width = mlp(latent_dim, hidden_dims, "relu")
        self.encoder = nn.Sequential(body, nn.Linear(width, 2 * latent_dim))
        body, width = mlp(latent_dim, hidden_dims, "relu")
        self.decoder = nn.Sequential(body, nn.Linear(width, latent_dim))
        if not gamma > 0:
            raise ValueError(f"gamma must be positive, got {gamma}")
        self.log_gamma = nn.Parameter(torch.tensor(math.log(gamma)))

    def negative_elbo(self, z: torch.Tensor) -> torch.Tensor:
        """-ELBO of the second VAE per code, [N]."""
        u = self.scale(z)
        mu, logvar = self.encoder(u).chunk(2, dim=-1)
        v = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = -0.5 * ((u - self.decoder(v)).pow(2) * torch.exp(-self.log_gamma) + self.log_gamma + LOG_2PI).sum(-1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
        return kl - recon

    def fit(self, codes: torch.Tensor, epochs: int, progress: Progress | None = None) -> dict[str, float]:
        codes = codes.float()
        self.scale.set_from(codes)
        figures = fit_by_gradient(self, lambda z: self.negative_elbo(z).mean(), codes, epochs, self.batch_size,
                                  self.lr, progress)
        return {**figures, "gamma": self.log_gamma.exp().item()}

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> torch.Tensor:
        v = temperature * torch.randn(n, self.latent_dim, device=self.log_gamma.device)
        return self.scale.inverse(self.decoder(v))
