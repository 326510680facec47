"""Finiteness checks: the guard in front of every write of weights (no tensor with NaN or infinity ever
reaches a file) and the training step's one fused check of its gradients."""
from __future__ import annotations

from collections.abc import Mapping

import torch

from vaezoo.errors import NonFiniteError


def first_nonfinite(tensors: Mapping[str, torch.Tensor]) -> str | None:
    """The name of the first floating tensor holding NaN or infinity, or None when all are finite."""
    for name, value in tensors.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            return name
    return None


def require_finite(tensors: Mapping[str, torch.Tensor], what: str) -> None:
    """Raise NonFiniteError naming the tensor when any of `tensors` (about to be written as `what`) is not finite."""
    bad = first_nonfinite(tensors)
    if bad is not None:
        raise NonFiniteError(f"refusing to write {what}: {bad} holds non-finite values")


def nonfinite_gradients(params: list[torch.Tensor]) -> torch.Tensor:
    """1.0 when any gradient holds a NaN or an infinity, else 0.0: one fused max-norm, no host synchronization."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros((), device=params[0].device if params else "cpu")
    return (~torch.isfinite(torch.stack(torch._foreach_norm(grads, float("inf"))))).any().float()
