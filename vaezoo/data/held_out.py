"""The held-out set a run is scored on, read in batches: which split, which rows, binarized how.

One held-out set per run: the trainer, `vaezoo eval`, the pictures and the quality benchmark all build it with
`held_out_set` from the run's recorded binarize setting, so every score of a run is of the same images (the
pictures and the sample-quality features read those images as stored, unbinarized). A
binarized held-out set is one fixed draw per image (`fixed_bits`, seed 0), made per batch from the stored
images: the same {0, 1} images whatever the batch size or the number of ranks."""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
from tqdm import tqdm

from vaezoo.core import VAE
from vaezoo.data.binarize import fixed_bits
from vaezoo.data.splits import ImageSet, Splits, to_model_input
from vaezoo.runtime.distributed import World

SEED = 0  # the held-out binarization's seed: the value every evaluation has used
#: A default batch holds at most this many input elements: 1000 images of 28x28, the batch evaluation has always
#: used, and fewer of larger images (191 of 64x64), so memory does not grow with the image size.
BATCH_ELEMENTS = 1000 * 784
PROGRESS_DELAY = 2.0  # seconds: a pass over the held-out set that ends sooner shows no progress bar


def binarization(binarize: str, model: VAE) -> str:
    """dynamic, static or none: `auto` binarizes dynamically exactly when the likelihood is for {0, 1} data."""
    if binarize == "auto":
        return "dynamic" if model.likelihood.binary_data else "none"
    return binarize


class HeldOut:
    """The first `count` images of a held-out ImageSet as a model is scored on them: float on the device,
    binarized when `binarized`, with their labels when `conditional`. Nothing is read until asked for."""

    def __init__(self, images: ImageSet, *, binarized: bool, conditional: bool, count: int | None = None) -> None:
        self.images, self.binarized, self.conditional = images, binarized, conditional
        self.count = len(images) if count is None else min(count, len(images))

    def __len__(self) -> int:
        return self.count

    @property
    def shape(self) -> tuple[int, ...]:
        return self.images.shape

    @property
    def labels(self) -> torch.Tensor:
        """The labels of these images (int64 [count], in memory), whether or not the model is conditional."""
        return self.images.labels[: self.count]

    @property
    def factors(self) -> np.ndarray | None:
        """Ground-truth factor values of these images [count, K] (None for a dataset without factors)."""
        return None if self.images.factors is None else self.images.factors[: self.count]

    def batch_rows(self, most: int | None = None) -> int:
        """A default batch size for these images: as many rows as BATCH_ELEMENTS holds (at least one), at most
        `most`."""
        rows = max(1, BATCH_ELEMENTS // math.prod(self.shape))
        return rows if most is None else min(most, rows)

    def head(self, n: int) -> HeldOut:
        """The first n of these images (all of them when n is larger)."""
        return HeldOut(self.images, binarized=self.binarized, conditional=self.conditional, count=min(n, self.count))

    def read(
        self, rows: np.ndarray, device: torch.device | str = "cpu", *, stored: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The images of `rows` as scored (float, binarized where this set is; as stored, in [0, 1], when
        `stored`: what pictures show) and their labels for a conditional model (else None), on `device`."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.count):
            raise IndexError(f"rows {rows.min()}..{rows.max()} are outside the held-out set's 0..{self.count - 1}")
        x = to_model_input(self.images.read(rows))
        if self.binarized and not stored:
            x = fixed_bits(x, rows, SEED)
        y = self.images.labels[torch.from_numpy(rows)].to(device) if self.conditional else None
        return x.to(device), y

    def first(
        self, n: int, device: torch.device | str = "cpu", *, stored: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The first n images (fewer when the set is smaller), with their labels, as `read` gives them."""
        return self.read(np.arange(min(n, self.count), dtype=np.int64), device, stored=stored)

    def batches(
        self, batch_size: int, device: torch.device | str, world: World | None = None, *, progress: str | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, int]]:
        """Every batch of `batch_size` images in order, as this rank's shard: (x, y or None, the rows in the
        whole batch). Only the shard's rows are read. `progress` names a progress bar to show."""
        world = world or World()
        starts = range(0, self.count, batch_size)
        bar = tqdm(starts, total=math.ceil(self.count / batch_size), desc=progress, leave=False,
                   delay=PROGRESS_DELAY, disable=progress is None)
        for start in bar:
            rows_in_batch = min(batch_size, self.count - start)
            first, last = world.shard(rows_in_batch)
            x, y = self.read(np.arange(start + first, start + last, dtype=np.int64), device)
            yield x, y, rows_in_batch


def held_out_set(data: Splits, model: VAE, binarize: str = "auto") -> HeldOut:
    """The held-out set `model` is scored on: `data`'s test split, binarized with one fixed draw per image
    whenever training binarized (`binarize` as the run recorded it), labelled for a conditional model."""
    return HeldOut(data.test, binarized=binarization(binarize, model) != "none", conditional=model.conditional)
