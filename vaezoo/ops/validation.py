"""Argument checks of reparameterize where its C++ checks (csrc/checks.cpp) do not run: under torch.compile's
tracing (which cannot enter C++), for the reference backend, and in builds without vaezoo._C. Both raise the same
errors with the same messages, which name the argument and what was expected; tests/test_ops_api.py holds both
to one table."""
from __future__ import annotations

import torch

FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _check_tensor(name: str, t: object) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a floating tensor (float32, float64, float16 or bfloat16), got {t.dtype}")
    return t


def _check_like(name: str, t: torch.Tensor, ref: torch.Tensor) -> None:
    if t.dtype != ref.dtype:
        raise TypeError(f"{name} has dtype {t.dtype} but mu has {ref.dtype}; they must match")
    if t.device != ref.device:
        raise ValueError(f"{name} is on {t.device} but mu is on {ref.device}; they must be on one device")


def check_arguments(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior_mu: torch.Tensor | None,
    prior_logvar: torch.Tensor | None,
    eps: torch.Tensor | None,
    samples: int | None,
    row_start: int = 0,
    row_total: int | None = None,
) -> None:
    """Raise TypeError/ValueError naming the first argument that does not fit the operator's contract."""
    _check_tensor("mu", mu)
    _check_tensor("logvar", logvar)
    if mu.dim() < 1:
        raise ValueError(f"mu must have a batch dimension (shape [B, ...]), got a {mu.dim()}-d tensor")
    _check_like("logvar", logvar, mu)
    if logvar.shape != mu.shape:
        raise ValueError(f"logvar has shape {tuple(logvar.shape)} but mu has {tuple(mu.shape)}; they must match")
    if (prior_mu is None) != (prior_logvar is None):
        raise ValueError("prior_mu and prior_logvar must be given together (both tensors, or both None)")
    if prior_mu is not None and prior_logvar is not None:
        for name, p in (("prior_mu", prior_mu), ("prior_logvar", prior_logvar)):
            _check_tensor(name, p)
            _check_like(name, p, mu)
            if tuple(p.shape) not in (tuple(mu.shape), tuple(mu.shape[1:]), (1, *mu.shape[1:])):
                raise ValueError(
                    f"{name} has shape {tuple(p.shape)}; expected the shape of mu {tuple(mu.shape)}, "
                    f"or one shared over the batch {tuple(mu.shape[1:])}"
                )
        if prior_mu.numel() != prior_logvar.numel():
            raise ValueError(
                f"prior_mu has shape {tuple(prior_mu.shape)} but prior_logvar has {tuple(prior_logvar.shape)}; give "
                "both the shape of mu, or both one shared over the batch"
            )
    if samples is not None:
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be a positive int or None, got {samples!r}")
    if eps is not None:
        _check_tensor("eps", eps)
        _check_like("eps", eps, mu)
        expected = tuple(mu.shape) if samples is None else (samples, *mu.shape)
        if tuple(eps.shape) != expected:
            raise ValueError(f"eps has shape {tuple(eps.shape)}; expected {expected} (the shape of z)")
    if row_total is not None and row_start + mu.shape[0] > row_total:
        raise ValueError(
            f"mu has {mu.shape[0]} rows, more than the rows {row_start}..{row_total} left in the noise_shard block"
        )
