"""DIP-VAE (Kumar et al., 2018): the ELBO plus a penalty that moves the covariance of the aggregate posterior
towards the identity, for disentangled codes."""
from __future__ import annotations

import torch

from vaezoo.core import VAE, Objective, VAEOutput
from vaezoo.core.estimators import elbo_terms

KINDS = ("i", "ii")


def batch_covariance(values: torch.Tensor) -> torch.Tensor:
    """The covariance of the rows of values [B, D] about their mean (1/B normalization), [D, D]."""
    centred = values - values.mean(0, keepdim=True)
    return centred.T @ centred / len(values)


def dip_penalty(cov: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """lambda_od sum_{i != j} cov_ij^2 + lambda_d sum_i (cov_ii - 1)^2."""
    diagonal = torch.diagonal(cov)
    off = cov - torch.diag_embed(diagonal)
    return lambda_od * off.pow(2).sum() + lambda_d * (diagonal - 1.0).pow(2).sum()


class DIPVAE(Objective):
    """-ELBO + dip_penalty(C): DIP-VAE-I (kind="i") takes C = Cov_x[E[z|x]] over the batch; DIP-VAE-II
    (kind="ii") C = Cov_x[E[z|x]] + E_x[diag Var[z|x]], the covariance of the aggregate posterior q(z).

    The paper's settings are lambda_d = 10 lambda_od for I and lambda_d = lambda_od for II; lambda_d=None picks
    them. terms["dip"] holds the penalty (a batch-level estimate, like the TC and MMD terms).
    """

    def __init__(self, kind: str = "i", lambda_od: float = 10.0, lambda_d: float | None = None) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        lambda_d = (10.0 * lambda_od if kind == "i" else lambda_od) if lambda_d is None else lambda_d
        if not lambda_od >= 0 or not lambda_d >= 0:
            raise ValueError(f"lambda_od and lambda_d must be non-negative, got {lambda_od} and {lambda_d}")
        self.kind, self.lambda_od, self.lambda_d = kind, float(lambda_od), float(lambda_d)

    def needs(self) -> frozenset[str]:
        return frozenset({"moments"})

    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        out = elbo_terms(vae, x, y)
        mean, var = vae.posterior.moments(out.q_params)
        cov = batch_covariance(mean)
        if self.kind == "ii":
            cov = cov + torch.diag_embed(var.mean(0))
        penalty = dip_penalty(cov, self.lambda_od, self.lambda_d)
        out.loss = out.loss + penalty
        out.terms["dip"] = penalty
        return out
