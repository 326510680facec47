"""The guard in front of every write of weights: no tensor with NaN or infinity ever reaches a file."""
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
