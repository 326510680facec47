"""A dataset's splits as torch datasets: images read when asked, in the dtype they are stored in, with their
labels (and ground-truth factor values) held in memory, since those are small.

An ImageSet is map-style: `read(rows)` returns the images of those rows as one [n, C, H, W] tensor of the
stored dtype, which a DataLoader calls once per batch through `__getitems__`. uint8 images are scaled to [0, 1]
per batch on the training device (`to_model_input`); float32 images are already in the model's range.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

STORED_DTYPES = (torch.uint8, torch.float32)


class ImageSet(torch.utils.data.Dataset):
    """One split: `len(labels)` images of `shape` stored as `dtype`, read by `read(rows)`; `labels` are int64
    [N], `factors` float64 [N, K] or None. Subclasses implement `read`; `in_memory` says whether reading is
    only indexing memory (then DataLoader workers would only add overhead)."""

    in_memory = False

    def __init__(self, shape: Sequence[int], dtype: torch.dtype, labels: torch.Tensor,
                 factors: np.ndarray | None = None) -> None:
        if dtype not in STORED_DTYPES:
            raise TypeError(f"images are stored as uint8 or float32, not {dtype}")
        self.shape, self.dtype = tuple(int(s) for s in shape), dtype
        self.labels, self.factors = labels, factors

    def read(self, rows: np.ndarray) -> torch.Tensor:
        """The images of `rows` (int64 indices), [len(rows), *shape] of `dtype`, in the order asked for."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.read(np.array([index], dtype=np.int64))[0], self.labels[index]

    def __getitems__(self, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch in one read (torch's DataLoader calls this when it exists); pass it through with
        `collate_batch`."""
        index = np.asarray(rows, dtype=np.int64)
        return self.read(index), self.labels[torch.from_numpy(index)]


class TensorImages(ImageSet):
    """A split held in memory as a tensor (small datasets, and loaders that return tensors)."""

    in_memory = True

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, factors: np.ndarray | None = None) -> None:
        super().__init__(images.shape[1:], images.dtype, labels, factors)
        self.images = images

    def read(self, rows: np.ndarray) -> torch.Tensor:
        return self.images[torch.from_numpy(rows)]


class Rows(ImageSet):
    """The rows `rows` of another split, in that order, reading only those (e.g. `--limit`'s first N of a
    fixed shuffle)."""

    def __init__(self, base: ImageSet, rows: np.ndarray) -> None:
        self.base, self.rows = base, np.asarray(rows, dtype=np.int64)
        factors = None if base.factors is None else base.factors[self.rows]
        super().__init__(base.shape, base.dtype, base.labels[torch.from_numpy(self.rows)], factors)
        self.in_memory = base.in_memory

    def read(self, rows: np.ndarray) -> torch.Tensor:
        return self.base.read(self.rows[rows])


def collate_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The DataLoader's collate function for ImageSets: `__getitems__` already made the batch."""
    return batch


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """Stored images as the model's float input: uint8 scaled by 1/255, float32 as it is."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images


@dataclass
class Splits:
    """A dataset by name: its training and held-out ImageSets and the names of its factors (if any). When
    `train` is only part of the dataset's training split (a run's --limit), `whole_train` gives the whole split
    (see full_train)."""

    name: str
    train: ImageSet
    test: ImageSet
    factor_names: tuple[str, ...] = ()
    whole_train: Callable[[], ImageSet] | None = field(default=None, repr=False, compare=False)

    def full_train(self) -> ImageSet:
        """The dataset's whole training split, even when `train` is a subset of it (--limit): what must not
        depend on a run's limit, such as the dataset's canonical sample-quality feature network. Made only when
        asked for, and its images, as any split's, are read only when asked for."""
        return self.train if self.whole_train is None else self.whole_train()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.train.shape

    # The old `vaezoo.Dataset`'s fields, for code that still wants whole splits as tensors: each reads the
    # whole split into memory (as floats in [0, 1]), so streaming code reads batches of rows instead.
    @property
    def train_x(self) -> torch.Tensor:
        return all_images(self.train)

    @property
    def test_x(self) -> torch.Tensor:
        return all_images(self.test)

    @property
    def train_y(self) -> torch.Tensor:
        return self.train.labels

    @property
    def test_y(self) -> torch.Tensor:
        return self.test.labels

    @property
    def train_factors(self) -> torch.Tensor | None:
        return None if self.train.factors is None else torch.from_numpy(self.train.factors)

    @property
    def test_factors(self) -> torch.Tensor | None:
        return None if self.test.factors is None else torch.from_numpy(self.test.factors)


def all_images(split: ImageSet) -> torch.Tensor:
    """Every image of `split` as float in [0, 1], read at once (small sets and old code only)."""
    return to_model_input(split.read(np.arange(len(split), dtype=np.int64)))
