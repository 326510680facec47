"""The fused reparameterize + KL operator: one call draws z and computes the KL term (and log q(z|x))."""
from __future__ import annotations

import os

import torch

from vaezoo.ops.reference import reference_reparameterize
from vaezoo.ops.validation import check_arguments

BACKENDS = ("auto", "fused", "reference")


def backends() -> dict[str, list[str]]:
    """Which backends are built and usable here, per device type."""
    return {"cpu": ["reference"]}


def _resolve_backend(backend: str) -> str:
    choice = os.environ.get("VAEZOO_BACKEND", backend) if backend == "auto" else backend
    if choice not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {choice!r}")
    if choice == "fused":
        raise RuntimeError("backend='fused' was asked for, but the fused kernels are not built in this install")
    return "reference"


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
    shape [K, *mu.shape] and log_q [K, B]. eps, when given, replaces the random draw.
    """
    check_arguments(mu, logvar, prior_mu, prior_logvar, eps, samples)
    _resolve_backend(backend)
    z, kl, lq = reference_reparameterize(mu, logvar, prior_mu, prior_logvar, eps, samples)
    return (z, kl, lq) if log_q else (z, kl)
