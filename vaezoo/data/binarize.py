"""Binarizing images for a Bernoulli likelihood with draws that depend only on (seed, row index), never on
how rows are batched, shuffled or sharded over ranks.

Each pixel's uniform comes from a counter-based hash (splitmix64's finalizer) of (seed, row, pixel), computed
with int64 tensor arithmetic on the images' own device. So a held-out image is binarized the same way by
every evaluation, and a training batch split over two processes is binarized as one process binarizes it.
"""
from __future__ import annotations

import numpy as np
import torch

from vaezoo.data.seeds import DYNAMIC_BITS, derive_seed, logical_shift, mix


def dynamic_seed(seed: int, epoch: int) -> int:
    """The seed of epoch `epoch`'s fresh binarization of the training set ("dynamic") in a run seeded `seed`."""
    return derive_seed(seed, DYNAMIC_BITS, epoch)


def fixed_bits(images: torch.Tensor, rows: torch.Tensor | np.ndarray, seed: int) -> torch.Tensor:
    """{0, 1} float images: pixel p of row r is 1 with probability images[i, p] (in [0, 1]), drawn from
    (seed, r, p) alone; `rows` holds each image's row index in its dataset."""
    rows = torch.as_tensor(rows, dtype=torch.int64).to(images.device)
    if rows.shape != images.shape[:1]:
        raise ValueError(f"fixed_bits needs one row index per image: {tuple(rows.shape)} for {tuple(images.shape)}")
    per_row = images[0].numel() if len(images) else 1
    pixel = torch.arange(per_row, device=images.device, dtype=torch.int64)
    key = derive_seed(seed, 0)  # hashed: seeds s and s + k do not share draws at shifted rows
    z = mix(rows[:, None] * per_row + pixel[None, :] + key)
    uniform = logical_shift(z, 40).to(torch.float32) * 2.0**-24  # 24 bits: exact in float32, in [0, 1)
    return (uniform.view_as(images) < images).to(images.dtype)
