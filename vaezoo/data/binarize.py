"""Binarizing images for a Bernoulli likelihood with draws that never depend on how many processes share a
batch, nor on where a run was interrupted.

- fixed_bits: one fixed draw per image, a function of (seed, row index) alone, so also independent of how rows
  are batched or shuffled: each pixel's uniform is a counter-based hash (splitmix64's finalizer) of (seed, row,
  pixel) in int64 tensor arithmetic on the images' device. The held-out set and `--binarize static` use it.
- dynamic_bits: a fresh draw of every training batch, from a generator seeded by (seed, epoch, batch): the
  uniforms of the whole global batch are drawn (as cheap as torch.bernoulli) and each rank keeps its shard's.
"""
from __future__ import annotations

import numpy as np
import torch

from vaezoo.data.seeds import DYNAMIC_BITS, derive_seed, logical_shift, mix


def dynamic_bits(images: torch.Tensor, batch_rows: int, start: int, seed: int, epoch: int, batch: int
                 ) -> torch.Tensor:
    """{0, 1} float images: the rows start..start+len(images) of a fresh draw for global batch `batch` (of
    `batch_rows` rows) of epoch `epoch` in a run seeded `seed`; pixel p is 1 with probability images[i, p]."""
    generator = torch.Generator(device=images.device).manual_seed(derive_seed(seed, DYNAMIC_BITS, epoch, batch))
    uniform = torch.rand((batch_rows, *images.shape[1:]), generator=generator, device=images.device)
    return (uniform[start : start + len(images)] < images).to(images.dtype)


def fixed_bits(images: torch.Tensor, rows: torch.Tensor | np.ndarray, seed: int) -> torch.Tensor:
    """{0, 1} float images: pixel p of row r is 1 with probability images[i, p] (in [0, 1]), drawn from
    (seed, r, p) alone; `rows` holds each image's row index in its dataset."""
    rows = torch.as_tensor(rows, dtype=torch.int64).to(images.device)
    if rows.shape != images.shape[:1]:
        raise ValueError(f"fixed_bits needs one row index per image: {tuple(rows.shape)} for {tuple(images.shape)}")
    per_row = images[0].numel() if len(images) else 1
    key = derive_seed(seed, 0)  # hashed: seeds s and s + k do not share draws at shifted rows
    z = mix((rows * per_row + key)[:, None] + torch.arange(per_row, device=images.device, dtype=torch.int64))
    uniform = logical_shift(z, 40).to(torch.float32).mul_(2.0**-24)  # 24 bits: exact in float32, in [0, 1)
    return (uniform.view_as(images) < images).to(images.dtype)
