"""What the trainer iterates: the training data as batches of stored images (with labels and row indices),
read through a torch DataLoader.

- SplitBatches: an ImageSet (a dataset loaded by name, or tensors given to vaezoo.fit), in the order of an
  EpochBatches sampler: exact resume from (epoch, batch), each rank reading only its shard.
- ItemBatches: a user's map-style Dataset through the same sampler; `__getitem__` is called anew every epoch.
- StreamBatches: a user's IterableDataset or DataLoader, iterated as it is; an epoch ends when the stream ends,
  or after `steps_per_epoch` batches.

Items are checked per batch (shape, dtype, one line naming the item), and a vaezoo error raised in a DataLoader
worker reaches the caller as that one line, not torch's worker traceback.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vaezoo.data.sampling import EpochBatches
from vaezoo.data.splits import ImageSet, collate_batch
from vaezoo.errors import DataError, VaezooError
from vaezoo.runtime.distributed import World

MAX_AUTO_WORKERS = 4


@dataclass
class Batch:
    """This rank's shard of one global batch: images in their stored dtype (on the CPU), labels (or None), the
    images' row indices (positions in the epoch for a stream), and the global batch's number of rows."""

    images: torch.Tensor
    labels: torch.Tensor | None
    rows: torch.Tensor
    size: int


def auto_workers(in_memory: bool) -> int:
    """The default number of DataLoader workers: none for data already in memory, else one per core but one
    (at most MAX_AUTO_WORKERS)."""
    if in_memory:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(MAX_AUTO_WORKERS, cores - 1))


def one_line(error: VaezooError) -> VaezooError:
    """A vaezoo error re-raised by a DataLoader from a worker carries the worker's whole traceback in its text;
    the same error with the original message alone."""
    text = str(error)
    if "Original Traceback" not in text:
        return error
    lines = text.rstrip().splitlines()
    name = f"{type(error).__module__}.{type(error).__qualname__}: "
    start = max((i for i, line in enumerate(lines) if line.startswith(name)), default=len(lines) - 1)
    first = lines[start][len(name):] if lines[start].startswith(name) else lines[start]
    return type(error)("\n".join([first, *lines[start + 1:]]))


def _next(iterator: Iterator[Any]) -> Any:
    """next(iterator), with a worker's vaezoo error as its own one line; StopIteration passes through."""
    try:
        return next(iterator)
    except VaezooError as error:
        raise one_line(error) from None


def loader_options(workers: int, device: torch.device) -> dict[str, Any]:
    """DataLoader settings for `workers` processes feeding `device`: pinned memory on CUDA (so copies do not
    block), prefetching and workers kept between epochs, and a generator of its own for the workers' seeds
    (a DataLoader otherwise draws them from torch's global generator, which would make the model's noise
    depend on when an epoch's iteration began, and a resumed run differ from an uninterrupted one)."""
    options: dict[str, Any] = {"num_workers": workers, "pin_memory": device.type == "cuda",
                               "generator": torch.Generator().manual_seed(0)}
    if workers:
        options.update(persistent_workers=True, prefetch_factor=4)
    return options


def _keep(items: Any) -> Any:
    """A collate function that keeps a batch's items as they came (they are checked and stacked by the caller)."""
    return items


class SampledBatches:
    """A map-style dataset's batches in the order of an EpochBatches sampler, read by a DataLoader; subclasses
    say how a batch is collated and checked (`collate`, `unpack`)."""

    checks_values = True
    indexed = True

    def __init__(self, dataset: torch.utils.data.Dataset, batch_size: int, seed: int, world: World, workers: int,
                 device: torch.device) -> None:
        self.dataset, self.world, self.workers, self.device = dataset, world, workers, device
        self.sampler = EpochBatches(len(dataset), batch_size, seed, world)
        self.steps_per_epoch = self.sampler.steps
        self.loader = self._loader(self.sampler, persistent=True)

    collate = staticmethod(_keep)  # a batch's items as they came

    def unpack(self, batch: Any, rows: torch.Tensor, index: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The checked images and labels (or None) of what the DataLoader gave for `rows` (batch `index`)."""
        raise NotImplementedError

    def empty(self) -> torch.Tensor:
        """The images of a rank's empty shard."""
        return torch.empty(0)

    def _loader(self, sampler: EpochBatches, persistent: bool) -> torch.utils.data.DataLoader:
        options = loader_options(self.workers, self.device)
        if not persistent:
            options.pop("persistent_workers", None)
        return torch.utils.data.DataLoader(self.dataset, batch_sampler=sampler, collate_fn=self.collate, **options)

    def epoch(self, epoch: int, start: int) -> Iterator[Batch]:
        """Epoch `epoch`'s batches from batch `start` on."""
        self.sampler.set_position(epoch, start)
        yield from self._read(self.loader, self.sampler, epoch)

    def in_order(self) -> Iterator[Batch]:
        """One pass over the dataset in row order (to refit a prior to the training codes)."""
        sampler = EpochBatches(len(self.dataset), self.sampler.batch_size, 0, self.world, shuffle=False)
        yield from self._read(self._loader(sampler, persistent=False), sampler, 0)

    def _read(self, loader: torch.utils.data.DataLoader, sampler: EpochBatches, epoch: int) -> Iterator[Batch]:
        order = sampler.permutation(epoch)
        iterator = iter(loader)
        for index in range(sampler.start, sampler.steps):
            rows = sampler.global_rows(order, index)
            mine = sampler.shard(rows)
            if not len(mine):  # the sampler yields nothing for it: nothing is read
                yield Batch(self.empty(), None, mine, len(rows))
                continue
            images, labels = self.unpack(_next(iterator), mine, index, epoch)
            yield Batch(images, labels, mine, len(rows))


class SplitBatches(SampledBatches):
    """An ImageSet's batches, each read by one `read` (see the module docstring)."""

    checks_values = False  # a split's loader checked its values; its batches' shapes and dtypes are checked here

    def __init__(self, split: ImageSet, batch_size: int, seed: int, world: World, workers: int,
                 device: torch.device, name: str) -> None:
        self.split, self.name = split, name
        super().__init__(split, batch_size, seed, world, workers, device)

    collate = staticmethod(collate_batch)

    def empty(self) -> torch.Tensor:
        return torch.empty((0, *self.split.shape), dtype=self.split.dtype)

    def unpack(self, batch: Any, rows: torch.Tensor, index: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        images, labels = batch
        if not isinstance(images, torch.Tensor) or images.dtype != self.split.dtype \
                or tuple(images.shape) != (len(rows), *self.split.shape):
            got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
            raise DataError(
                f"{self.name}: the batch of training item {int(rows[0])} (batch {index + 1} of epoch {epoch}) came "
                f"as {got}, not {self.split.dtype} {(len(rows), *self.split.shape)}: a dataset's items must keep "
                "one shape and dtype; fix the dataset")
        return images, labels


class ItemChecker:
    """Stacks a batch's items (x or (x, y)) and checks each: images of the model's shape, uint8 or float, one
    dtype throughout the stream, integer labels where the model needs them; errors name the item."""

    def __init__(self, what: str, shape: tuple[int, ...], needs_labels: bool) -> None:
        self.what, self.shape, self.needs_labels = what, tuple(shape), needs_labels
        self.dtype: torch.dtype | None = None  # of the first item seen

    def stack(self, items: list[Any], first: int, item_index: Any = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The images and labels (or None) of `items`, the first of which is item `first` of the epoch (or,
        for a map Dataset, whose indices `item_index` gives)."""
        images, labels = [], []
        for i, item in enumerate(items):
            where = f"{self.what}: item {first + i if item_index is None else int(item_index[i])}"
            x, y = (item[0], item[1]) if isinstance(item, (tuple, list)) and len(item) == 2 else (item, None)
            images.append(self._image(x, where))
            labels.append(self._label(y, where))
        y = None if labels[0] is None else torch.stack(labels)
        return torch.stack(images), y

    def _image(self, x: Any, where: str) -> torch.Tensor:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        if not isinstance(x, torch.Tensor):
            raise DataError(f"{where} is {type(x).__name__}; items are an image tensor, or (image, label)")
        if not (x.dtype == torch.uint8 or x.is_floating_point()):
            raise DataError(f"{where} is {x.dtype}; images are uint8 (0..255) or float in [0, 1]")
        if tuple(x.shape) != self.shape:
            raise DataError(f"{where} has shape {tuple(x.shape)}; this model takes images of shape {self.shape}")
        if self.dtype is None:
            self.dtype = x.dtype
        elif x.dtype != self.dtype:
            raise DataError(f"{where} is {x.dtype}, but the items before it are {self.dtype}: a dataset's items "
                            "must keep one dtype")
        return x

    def _label(self, y: Any, where: str) -> torch.Tensor | None:
        if y is None:
            if self.needs_labels:
                raise DataError(f"{where} has no label; this conditional model needs items (image, label)")
            return None
        y = torch.as_tensor(y)
        if y.numel() != 1 or y.is_floating_point() or y.is_complex():
            raise DataError(f"{where} has label {y.tolist() if y.numel() < 5 else tuple(y.shape)}; labels are "
                            "one integer per image")
        return y.reshape(()).long()

    def check_batch(self, batch: Any, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A user DataLoader's collated batch `index` (x or (x, y)) as images and labels (or None)."""
        where = f"{self.what}: batch {index + 1}"
        x, y = (batch[0], batch[1]) if isinstance(batch, (tuple, list)) and len(batch) == 2 else (batch, None)
        if not isinstance(x, torch.Tensor) or x.ndim != len(self.shape) + 1:
            got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise DataError(f"{where} is {got}; a loader's batches are images [B, {', '.join(map(str, self.shape))}]"
                            ", or (images, labels)")
        if len(x):  # a collated batch's items share one shape and dtype: its first item speaks for all
            self._image(x[0], where)
        if y is None:
            if self.needs_labels:
                raise DataError(f"{where} has no labels; this conditional model needs batches (images, labels)")
            return x, None
        y = torch.as_tensor(y)
        if y.shape != (len(x),) or y.is_floating_point():
            raise DataError(f"{where}'s labels are {y.dtype} {tuple(y.shape)}; labels are integers, one per image")
        return x, y.long()


def check_values(x: torch.Tensor, what: str, index: int, binarizing: bool) -> None:
    """DataError unless the float images x (batch `index`) are finite, and in [0, 1] when binarizing."""
    if not torch.isfinite(x).all():
        raise DataError(f"{what}: batch {index + 1} holds NaN or infinite values")
    if binarizing and len(x) and (x.min() < 0 or x.max() > 1):
        raise DataError(f"{what}: batch {index + 1} has values in [{x.min():.3g}, {x.max():.3g}]; binarizing for the "
                        "Bernoulli likelihood needs [0, 1]: rescale the images, or choose another likelihood or "
                        "binarize='none'")


class ItemBatches(SampledBatches):
    """A user's map-style Dataset in the order of an EpochBatches sampler; each item is read anew every epoch
    and checked by `checker`."""

    def __init__(self, dataset: torch.utils.data.Dataset, checker: ItemChecker, batch_size: int, seed: int,
                 workers: int, device: torch.device) -> None:
        self.checker = checker
        super().__init__(dataset, batch_size, seed, World(), workers, device)

    def unpack(self, batch: Any, rows: torch.Tensor, index: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.checker.stack(batch, 0, rows)


class StreamBatches:
    """A user's IterableDataset (batched here) or DataLoader (iterated as it is); see the module docstring."""

    checks_values = True
    indexed = False  # a stream's items have no fixed index: positions in the epoch stand in for rows

    def __init__(self, data: torch.utils.data.IterableDataset | torch.utils.data.DataLoader, checker: ItemChecker,
                 batch_size: int, workers: int, device: torch.device, steps_per_epoch: int | None) -> None:
        self.checker, self.user_loader = checker, isinstance(data, torch.utils.data.DataLoader)
        self.loader = data if self.user_loader else torch.utils.data.DataLoader(
            data, batch_size=batch_size, collate_fn=_keep, **loader_options(workers, device))
        self.fixed_steps = steps_per_epoch
        try:
            known = len(self.loader)
        except TypeError:  # a stream without a length
            known = None
        self.steps_per_epoch = steps_per_epoch or known
        self.iterator: Iterator[Any] | None = None

    def epoch(self, epoch: int, start: int) -> Iterator[Batch]:
        """The next epoch: one pass of the stream, or the next `steps_per_epoch` batches of it (started anew
        whenever it ends)."""
        fresh = self.fixed_steps is None or self.iterator is None
        if fresh:
            self.iterator = iter(self.loader)
        position = index = 0
        while self.fixed_steps is None or index < self.fixed_steps:
            try:
                batch = _next(self.iterator)
            except StopIteration:
                if self.fixed_steps is None:
                    return
                if fresh:
                    raise DataError(f"{self.checker.what}: the stream gave no items") from None
                self.iterator, fresh = iter(self.loader), True
                continue
            fresh = False
            if self.user_loader:
                images, labels = self.checker.check_batch(batch, index)
            else:
                images, labels = self.checker.stack(batch, position)
            rows = torch.arange(position, position + len(images))
            position, index = position + len(images), index + 1
            yield Batch(images, labels, rows, len(images))

    def in_order(self) -> Iterator[Batch]:
        """One epoch of the stream (to refit a prior to the training codes)."""
        saved, self.iterator = self.iterator, None
        try:
            yield from self.epoch(0, 0)
        finally:
            self.iterator = saved
