"""A Gaussian mixture on the aggregate posterior, fitted by expectation-maximization (the post-hoc density of
RAE; Ghosh et al., 2020): the simplest sampler that follows where the training codes actually are."""
from __future__ import annotations

import math

import torch

from vaezoo.components.layers import positive_int
from vaezoo.core import Sampler
from vaezoo.core.sampler import Progress

LOG_2PI = math.log(2.0 * math.pi)


def component_log_densities(z: torch.Tensor, means: torch.Tensor, scale_tril: torch.Tensor) -> torch.Tensor:
    """log N(z_i; mu_k, L_k L_k^T) for every code and component, [N, K] (float64 recommended)."""
    columns = []
    for mu, tril in zip(means, scale_tril):
        white = torch.linalg.solve_triangular(tril, (z - mu).T, upper=False)  # [D, N]
        log_det = 2.0 * torch.log(torch.diagonal(tril)).sum()
        columns.append(-0.5 * (white.pow(2).sum(0) + log_det + z.shape[1] * LOG_2PI))
    return torch.stack(columns, dim=1)


class GaussianMixtureSampler(Sampler):
    """K full-covariance Gaussians fitted by EM to posterior means; started from K codes chosen at random (the
    seeded global RNG), each with the codes' covariance, and stopped after `epochs` iterations or when the mean
    log-likelihood gains less than `tol` nats. `regularization` (times the codes' mean variance) is added to
    every covariance's diagonal, so that a component collapsing on a few codes stays invertible."""

    default_epochs = 100

    def __init__(self, latent_dim: int, components: int = 10, tol: float = 1e-4, regularization: float = 1e-6) -> None:
        super().__init__(latent_dim)
        self.components = positive_int("components", components)
        if not tol >= 0 or not regularization > 0:
            raise ValueError(f"need tol >= 0 and regularization > 0, got {tol} and {regularization}")
        self.tol, self.regularization = float(tol), float(regularization)
        self.register_buffer("log_weights", torch.full((components,), -math.log(components)))
        self.register_buffer("means", torch.zeros(components, latent_dim))
        self.register_buffer("scale_tril", torch.eye(latent_dim).expand(components, -1, -1).clone())

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) under the mixture, [N]."""
        z = z.double()
        joint = component_log_densities(z, self.means.double(), self.scale_tril.double()) + self.log_weights.double()
        return torch.logsumexp(joint, dim=1)

    @torch.no_grad()
    def fit(self, codes: torch.Tensor, epochs: int, progress: Progress | None = None) -> dict[str, float]:
        z = codes.double()
        n, d = z.shape
        if n < self.components:
            raise ValueError(f"{n} codes cannot fit {self.components} mixture components")
        ridge = self.regularization * z.var(0).mean().clamp(min=1e-12) * torch.eye(d, dtype=z.dtype, device=z.device)
        means = z[torch.randperm(n)[: self.components]].clone()
        cov = torch.cov(z.T).reshape(d, d) + ridge
        trils = torch.linalg.cholesky(cov).expand(self.components, d, d).clone()
        log_weights = torch.full((self.components,), -math.log(self.components), dtype=z.dtype, device=z.device)
        previous, iterations = -math.inf, 0
        for iterations in range(1, epochs + 1):
            joint = component_log_densities(z, means, trils) + log_weights  # E step
            total = torch.logsumexp(joint, dim=1, keepdim=True)
            resp = torch.exp(joint - total)
            mean_ll = float(total.mean())
            counts = resp.sum(0) + 1e-10  # M step
            log_weights = torch.log(counts / n)
            means = resp.T @ z / counts[:, None]
            for k in range(self.components):
                diff = z - means[k]
                cov = (resp[:, k, None] * diff).T @ diff / counts[k] + ridge
                trils[k] = torch.linalg.cholesky(cov)
            if progress is not None:
                progress(iterations, -mean_ll)
            if mean_ll - previous < self.tol:
                break
            previous = mean_ll
        self.log_weights.copy_(log_weights)
        self.means.copy_(means)
        self.scale_tril.copy_(trils)
        return {"mean_log_likelihood": float(self.log_prob(codes).mean()), "iterations": iterations}

    def sample(self, n: int, temperature: float = 1.0) -> torch.Tensor:
        k = torch.distributions.Categorical(logits=self.log_weights).sample((n,))
        eps = torch.randn(n, self.latent_dim, 1, dtype=self.means.dtype, device=self.means.device)
        return self.means[k] + temperature * (self.scale_tril[k] @ eps).squeeze(-1)
