"""The fused reparameterize + KL operator: one call draws z and computes the KL term (and log q(z|x))."""
from __future__ import annotations

import torch

from vaezoo.ops.backend import BACKENDS, backends, use_fused
from vaezoo.ops.fused import fused_reparameterize
from vaezoo.ops.reference import reference_reparameterize
from vaezoo.ops.validation import check_arguments

__all__ = ["BACKENDS", "backends", "reparameterize", "reference_reparameterize"]


def reparameterize(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior_mu: torch.Tensor | None = None,
    prior_logvar: torch.Tensor | None = None,
    *,
    eps: torch.Tensor | None = None,
    samples: int | None = None,
    log_q: bool = False,
    backend: str = "auto",
):
    """Draw z = mu + exp(logvar/2) * eps and return (z, kl), or (z, kl, log_q) when log_q=True.

    kl is KL(q(z|x) || prior) per example (summed over every non-batch dim) against N(0, I), or against the
    diagonal Gaussian (prior_mu, prior_logvar), shaped like mu or shared over the batch. With samples=K, z has
    shape [K, *mu.shape] and log_q [K, B]. eps, when given, replaces the random draw. backend is "auto" (the
    fused kernels where built, unless $VAEZOO_BACKEND says otherwise), "fused" or "reference".
    """
    check_arguments(mu, logvar, prior_mu, prior_logvar, eps, samples)
    run = fused_reparameterize if use_fused(backend, mu.device.type) else reference_reparameterize
    z, kl, lq = run(mu, logvar, prior_mu, prior_logvar, eps, samples)
    return (z, kl, lq) if log_q else (z, kl)
