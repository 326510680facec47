"""The pure-PyTorch reference path of reparameterize: the oracle for the fused kernels and their fallback."""
from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2.0 * math.pi)


def _per_example(t: torch.Tensor, batch_dims: int) -> torch.Tensor:
    """Sum every dimension after the first `batch_dims` ones."""
    return t.flatten(batch_dims).sum(-1) if t.dim() > batch_dims else t


def reference_reparameterize(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior_mu: torch.Tensor | None,
    prior_logvar: torch.Tensor | None,
    eps: torch.Tensor | None,
    samples: int | None,
    row_start: int = 0,
    row_total: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (z, kl, log_q) with z = mu + exp(logvar/2) * eps, computed in float32 or better.

    kl is KL(N(mu, exp(logvar)) || prior) per example, log_q is log q(z|x) per drawn sample. A drawn eps is
    rows [row_start, row_start + B) of a draw for row_total rows (default: B).
    """
    acc = torch.promote_types(mu.dtype, torch.float32)
    m, lv = mu.to(acc), logvar.to(acc)
    if eps is None:
        rows = mu.shape[0]
        total = rows if row_total is None else row_total
        draw_shape = (total, *mu.shape[1:]) if samples is None else (samples, total, *mu.shape[1:])
        eps = torch.randn(draw_shape, dtype=mu.dtype, device=mu.device).narrow(len(draw_shape) - mu.dim(), row_start, rows)
    e = eps.to(acc)
    std = torch.exp(0.5 * lv)
    z = m + std * e
    if prior_mu is None or prior_logvar is None:
        kl_elem = 0.5 * (torch.exp(lv) + m * m - 1.0 - lv)
    else:
        pm, plv = prior_mu.to(acc), prior_logvar.to(acc)
        kl_elem = 0.5 * (plv - lv + (torch.exp(lv) + (m - pm) ** 2) * torch.exp(-plv) - 1.0)
    kl = _per_example(kl_elem, 1)
    batch_dims = 1 if samples is None else 2
    # (z - mu) / std is eps: computed from eps directly, log q stays exact where std under- or overflows
    log_q = _per_example(-0.5 * (e * e + lv + LOG_2PI), batch_dims)
    return z.to(mu.dtype), kl.to(mu.dtype), log_q.to(mu.dtype)
