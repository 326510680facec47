"""Fixed binarization: one Bernoulli draw of each image that depends only on a seed and the image's row, so a
held-out (or statically binarized) set is the same {0, 1} images however it is batched or sharded."""
from __future__ import annotations

import numpy as np
import torch

# torch's CPU generator keeps 32 bits of its seed: (seed, row) is mixed into 32 bits, a bijection of the row for
# each seed (odd multipliers), so no two rows of one binarization share a generator
_ROW_MULTIPLIER, _SEED_MULTIPLIER = 0x9E3779B1, 0x85EBCA6B


def fixed_bits(images: torch.Tensor, rows: np.ndarray, seed: int = 0) -> torch.Tensor:
    """{0, 1} float images [n, ...] drawn from `images` (probabilities in [0, 1], row i being dataset row
    `rows[i]`), each row from a generator seeded by (seed, its row) alone."""
    if len(images) != len(rows):
        raise ValueError(f"{len(images)} images but {len(rows)} rows")
    source = images.detach().float().cpu()
    out = torch.empty_like(source)
    generator = torch.Generator()
    for i, row in enumerate(np.asarray(rows, dtype=np.int64).tolist()):
        generator.manual_seed((row * _ROW_MULTIPLIER + int(seed) * _SEED_MULTIPLIER) & 0xFFFFFFFF)
        torch.bernoulli(source[i], generator=generator, out=out[i])
    return out.to(images.device)
