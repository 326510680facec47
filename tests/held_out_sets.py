"""Held-out sets for tests: tensors as a HeldOut, and an ImageSet that counts what is read and refuses a read
of more rows than a batch."""
from __future__ import annotations

import numpy as np
import torch

from vaezoo.data.held_out import HeldOut
from vaezoo.data.splits import TensorImages


def held(x: torch.Tensor, y: torch.Tensor | None = None, *, conditional: bool = False,
         binarized: bool = False) -> HeldOut:
    """Images x (float in [0, 1]) as a held-out set, scored as they are unless `binarized`."""
    labels = torch.zeros(len(x), dtype=torch.int64) if y is None else y
    return HeldOut(TensorImages(x, labels), binarized=binarized, conditional=conditional)


class CountingImages(TensorImages):
    """TensorImages that records every read and refuses to read more than `most` rows at once."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None = None, factors: np.ndarray | None = None,
                 most: int = 1000) -> None:
        super().__init__(images, torch.zeros(len(images), dtype=torch.int64) if labels is None else labels, factors)
        self.most, self.reads = most, []

    def read(self, rows: np.ndarray) -> torch.Tensor:
        if len(rows) > self.most:
            raise AssertionError(f"read {len(rows)} rows at once, more than {self.most}")
        self.reads.append(np.asarray(rows).copy())
        return super().read(rows)

    @property
    def rows_read(self) -> int:
        return sum(len(r) for r in self.reads)
