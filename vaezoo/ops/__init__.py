"""The fused reparameterize + KL operator: one call draws z and computes the KL term (and log q(z|x))."""
from __future__ import annotations

import torch

from vaezoo.ops.backend import BACKENDS, backends, use_fused
from vaezoo.ops.fused import eager_entry, fused_reparameterize
from vaezoo.ops.reference import reference_reparameterize
from vaezoo.ops.shard import current_shard, noise_shard, rows_split
from vaezoo.ops.validation import check_arguments

__all__ = ["BACKENDS", "backends", "noise_shard", "reparameterize", "reference_reparameterize", "rows_split"]

_is_compiling = torch.compiler.is_compiling


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
    if not _is_compiling():  # eager: the common call is one C++ call (checks included), None where it is not
        out = eager_entry(mu, logvar, prior_mu, prior_logvar, eps, samples, log_q, backend, current_shard())
        if out is not None:
            return out
    # the general path: the one torch.compile traces, the reference backend's, and every refusal's
    row_start, row_total = current_shard() or (0, None)
    check_arguments(mu, logvar, prior_mu, prior_logvar, eps, samples, row_start, row_total)
    run = fused_reparameterize if use_fused(backend, mu.device.type) else reference_reparameterize
    z, kl, lq = run(mu, logvar, prior_mu, prior_logvar, eps, samples, row_start, row_total)
    return (z, kl, lq) if log_q else (z, kl)
