"""The beta-TCVAE objective (Chen et al., 2018): the KL split into MI, total correlation and dimension-wise KL."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vaezoo.core import VAE, Objective, Posterior, VAEOutput


@dataclass
class KLDecomposition:
    """Per-example Monte-Carlo terms of the KL; mi + tc + dim_kl = log q(z|x) - log p(z)."""

    mi: torch.Tensor
    tc: torch.Tensor
    dim_kl: torch.Tensor


def decompose_kl(
    z: torch.Tensor,
    posterior: Posterior,
    q_params: tuple[torch.Tensor, ...],
    log_q: torch.Tensor,
    log_p: torch.Tensor,
    dataset_size: int | None = None,
) -> KLDecomposition:
    """Split log q(z|x) - log p(z) with log q(z) and log prod_j q(z_j) by minibatch-weighted sampling.

    log q(z_i) ~ logsumexp_k log q(z_i | x_k) - log(N M) over the M examples of the batch, and the same per
    dimension for the marginals; N is the dataset size (the batch size when None). N only shifts the reported
    MI and TC by constants: the gradients do not depend on it.
    """
    batch = z.shape[0]
    log_norm = math.log(batch * (dataset_size or batch))
    pairwise = posterior.log_density(z.unsqueeze(1), tuple(p.unsqueeze(0) for p in q_params))  # [i, k, d]
    log_qz = torch.logsumexp(pairwise.sum(-1), dim=1) - log_norm
    log_prod_marginals = (torch.logsumexp(pairwise, dim=1) - log_norm).sum(-1)
    return KLDecomposition(log_q - log_qz, log_qz - log_prod_marginals, log_prod_marginals - log_p)


class BetaTCVAE(Objective):
    """E[log p(x|z)] - alpha MI - beta TC - gamma dimension-wise KL; alpha = beta = gamma = 1 is the ELBO."""

    def __init__(
        self, alpha: float = 1.0, beta: float = 6.0, gamma: float = 1.0, dataset_size: int | None = None
    ) -> None:
        super().__init__()
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            if not value >= 0:
                raise ValueError(f"{name} must be non-negative, got {value}")
        if dataset_size is not None and (not isinstance(dataset_size, int) or dataset_size < 1):
            raise ValueError(f"dataset_size must be a positive int or None, got {dataset_size!r}")
        self.alpha, self.beta, self.gamma = float(alpha), float(beta), float(gamma)
        self.dataset_size = dataset_size

    def needs(self) -> frozenset[str]:
        return frozenset({"density"})

    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        q_params = vae.encode(x, y)
        latent = vae.posterior.draw(q_params, vae.prior)
        params = vae.decode_params(latent.z, y)
        recon = vae.likelihood.log_prob(params, x)
        log_p = vae.prior.log_prob(latent.z)
        parts = decompose_kl(latent.z, vae.posterior, q_params, latent.log_q, log_p, self.dataset_size)
        penalty = self.alpha * parts.mi + self.beta * parts.tc + self.gamma * parts.dim_kl
        terms = {"mi": parts.mi, "tc": parts.tc, "dim_kl": parts.dim_kl}
        return VAEOutput(-(recon - penalty).mean(), recon, latent.kl, latent.z, q_params, params, terms)
