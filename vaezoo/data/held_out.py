"""The evaluation recipe, in one place: which held-out set a model is scored on, binarized how."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from vaezoo.core import VAE
from vaezoo.data.binarize import fixed_bits
from vaezoo.data.splits import Splits, all_images
from vaezoo.runtime.distributed import World


def binarization(binarize: str, model: VAE) -> str:
    """dynamic, static or none: `auto` binarizes dynamically exactly when the likelihood is for {0, 1} data."""
    if binarize == "auto":
        return "dynamic" if model.likelihood.binary_data else "none"
    return binarize


class HeldOut:
    """The held-out images a model is scored on (x, as floats) and their labels for a conditional model (y,
    else None). Unpacks as (x, y) for older callers."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None) -> None:
        self.x, self.y = x, y
        self.conditional = y is not None

    def __len__(self) -> int:
        return len(self.x)

    def __iter__(self) -> Iterator[torch.Tensor | None]:
        return iter((self.x, self.y))

    def batches(self, batch_size: int, device: torch.device, world: World | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, int]]:
        """This rank's shard of every batch: (x on device, y or None, rows in the global batch)."""
        world = world or World()
        for start in range(0, len(self.x), batch_size):
            x = self.x[start : start + batch_size]
            lo, hi = world.shard(len(x))
            y = None if self.y is None else self.y[start + lo : start + hi].to(device)
            yield x[lo:hi].to(device), y, len(x)


def held_out_set(data: Splits, model: VAE, binarize: str = "auto") -> HeldOut:
    """The held-out images a model is evaluated on (one fixed binarization of the test split, by
    binarize.fixed_bits with seed 0, whenever training binarized, so every evaluation of a run sees the same
    {0, 1} images) and their labels for a conditional model."""
    x = all_images(data.test)
    if binarization(binarize, model) != "none":
        x = fixed_bits(x, np.arange(len(x)), 0)
    return HeldOut(x, data.test.labels if model.conditional else None)
