"""The fixed held-out split of a dataset that has none of its own, as row indices (nothing is read to make it).

The same seeded permutation the in-memory split has always used (torch.randperm, seed 0, the first rows held
out), so a dataset splits the same way whether it is read from memory or streamed from disk.
"""
from __future__ import annotations

import numpy as np
import torch

from vaezoo.errors import DataError

HELD_OUT_FRACTION = 0.1


def held_out_count(n: int, fraction: float = HELD_OUT_FRACTION) -> int:
    """How many of n examples are held out: `fraction` of them, at least one."""
    return max(1, round(fraction * n))


def split_rows(name: str, n: int, held_out: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows), int64: a fixed shuffle of 0..n-1 whose first `held_out` are held out."""
    if not 0 < held_out < n:
        raise DataError(f"{name}: {n} examples are too few to hold {held_out} out for evaluation")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0)).numpy()
    return order[held_out:], order[:held_out]
