"""The fused reparameterize + KL operator: one call draws z and computes the KL term (and log q(z|x))."""
from __future__ import annotations

import torch

from vaezoo.ops.backend import BACKENDS, backends, use_fused
from vaezoo.ops.fused import fused_reparameterize
from vaezoo.ops.reference import reference_reparameterize
from vaezoo.ops.shard import current_shard, noise_shard, rows_split
from vaezoo.ops.validation import check_arguments

__all__ = ["BACKENDS", "backends", "noise_shard", "reparameterize", "reference_reparameterize", "rows_split"]


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
    fused kernels where built, unless $VAEZOO_BACKEND says otherwise), "fused" or "reference". Inside a
    `noise_shard(start, total)` block a drawn eps is that of rows [start, start + B) of a `total`-row draw.
    """
    check_arguments(mu, logvar, prior_mu, prior_logvar, eps, samples)
    row_start, row_total = current_shard() or (0, None)
    if row_total is not None and row_start + mu.shape[0] > row_total:
        raise ValueError(
            f"mu has {mu.shape[0]} rows, more than the rows {row_start}..{row_total} left in the noise_shard block"
        )
    run = fused_reparameterize if use_fused(backend, mu.device.type) else reference_reparameterize
    z, kl, lq = run(mu, logvar, prior_mu, prior_logvar, eps, samples, row_start, row_total)
    return (z, kl, lq) if log_q else (z, kl)
