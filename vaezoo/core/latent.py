"""Latent: what a posterior's draw returns."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Latent:
    """A reparameterized draw: z, its KL term per example, and log q(z|x) (from the same pass).

    With `samples=K`, z is [K, B, D] and log_q [K, B]; kl is [B] when analytic, [K, B] when Monte-Carlo.
    From `Posterior.kl_per_dim`, kl is [B, D]: one term per latent dimension.

    `aux` is the posterior's own training loss per example [B] (VQ's codebook and commitment terms), or None;
    the estimators put it in `terms["posterior_loss"]` and `VAE.forward` adds its mean to every objective's loss.
    It is not part of the ELBO.
    """

    z: torch.Tensor
    kl: torch.Tensor
    log_q: torch.Tensor
    aux: torch.Tensor | None = None
