"""Loading a dataset by name: its registered loader, its options, `limit`, and the check of what the loader
returned (Splits of ImageSets, or the old `Dataset` of tensors, which is wrapped into TensorImages).

Also the small in-memory sets (digits, MNIST-format IDX files) and the old tensor Dataset type."""
from __future__ import annotations

import functools
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from vaezoo.data.held_out_rows import split_rows
from vaezoo.data.readers import read_idx, scaled_pixels
from vaezoo.data.splits import STORED_DTYPES, ImageSet, Rows, Splits, TensorImages
from vaezoo.errors import DataError
from vaezoo.registry.catalog import Entry
from vaezoo.registry.discovery import get_registry

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_DIR = Path("/usr/share/datasets/mnist")
#: dataset options and the command-line flags that set them
OPTION_FLAGS = {"image_size": "--image-size", "channels": "--channels"}


@dataclass
class Dataset:
    """The old dataset contract, still accepted from a loader: training and held-out images in [0, 1] as
    tensors, with integer labels; ground-truth datasets also carry the values of their generative factors
    (float64 [N, K], one column per name in factor_names). load_dataset wraps it into Splits."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    train_factors: torch.Tensor | None = None
    test_factors: torch.Tensor | None = None
    factor_names: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])


def _find(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.exists():
            return candidate
    raise DataError(f"{directory} has no {stem}.gz or {stem}")


def load_mnist_like(name: str, data_dir: Path, install_hint: str) -> Splits:
    """Read the four IDX files of an MNIST-format dataset into memory (uint8 pixels stay uint8: scaled per
    batch)."""
    if not data_dir.is_dir():
        raise DataError(f"the {name} data directory {data_dir} does not exist. {install_hint}")
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        image_file = _find(data_dir, f"{prefix}-images-idx3-ubyte")
        label_file = _find(data_dir, f"{prefix}-labels-idx1-ubyte")
        images, labels = read_idx(image_file), read_idx(label_file)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"{name} {split} split in {data_dir}: images {images.shape} and labels {labels.shape} do not pair up"
            )
        if len(images) == 0:
            raise DataError(f"{image_file} holds no images; the {split} split must not be empty")
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"{label_file}: labels must be integers, got dtype {labels.dtype}")
        pixels = images if images.dtype == np.uint8 else scaled_pixels(image_file, images)
        arrays[split] = TensorImages(torch.from_numpy(np.array(pixels)).unsqueeze(1),
                                     torch.from_numpy(labels.astype(np.int64)))
    return Splits(name, arrays["train"], arrays["test"])


def load_fashion_mnist(data_dir: Path | None) -> Splits:
    hint = (
        "Get Fashion-MNIST with `apt-get install dataset-fashion-mnist` (it installs to "
        f"{FASHION_MNIST_DIR}), or pass --data-dir to a folder with the four IDX files."
    )
    return load_mnist_like("fashion-mnist", data_dir or FASHION_MNIST_DIR, hint)


def load_mnist(data_dir: Path | None) -> Splits:
    hint = f"Pass --data-dir to a folder with MNIST's four IDX files (default {MNIST_DIR})."
    return load_mnist_like("mnist", data_dir or MNIST_DIR, hint)


def load_digits() -> Splits:
    """scikit-learn's 8x8 digits (shipped with it), scaled to [0, 1], with a fixed held-out split of 297; in
    memory."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    train, test = (torch.from_numpy(rows) for rows in split_rows("digits", len(images), 297))
    return Splits("digits", TensorImages(images[train], labels[train]), TensorImages(images[test], labels[test]))


def _check_limit(limit: object) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise DataError(f"limit must be a positive integer, got {limit!r}")


def limit_training(data: Splits, limit: int) -> Splits:
    """The first `limit` training examples of a fixed shuffle (seed 0) of the training split, read only when
    asked for (the others never are); held-out kept, and the whole training split kept for full_train."""
    _check_limit(limit)
    rows = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))[:limit]
    return Splits(data.name, Rows(data.train, rows.numpy()), data.test, data.factor_names,
                  whole_train=data.full_train)


def _takes(loader: Callable[..., Any], parameter: str) -> bool:
    """Whether `loader` takes `parameter` by keyword (named, or through **kwargs)."""
    return any(
        p.kind is p.VAR_KEYWORD or (p.name == parameter and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        for p in inspect.signature(loader).parameters.values()
    )


def _check_tensors(where: str, plugin: str, data: Dataset) -> Splits:
    """An old-style Dataset of tensors, checked and wrapped into TensorImages (float images as float32)."""
    for field in ("train_x", "train_y", "test_x", "test_y"):
        if not isinstance(getattr(data, field), torch.Tensor):
            raise DataError(f"{where} gave {field} as {type(getattr(data, field)).__name__}, not a torch.Tensor; "
                            f"fix the {plugin} plugin")
    for split in ("train", "test"):
        x, y = getattr(data, f"{split}_x"), getattr(data, f"{split}_y")
        if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{where} gave {split}_x {tuple(x.shape)} and {split}_y {tuple(y.shape)}, which do not "
                            f"pair up as [N, C, ...] images and [N] labels; fix the {plugin} plugin")
        if not (x.dtype == torch.uint8 or x.is_floating_point()):
            raise DataError(f"{where} gave {split}_x as {x.dtype}; images are uint8 or float in [0, 1]; "
                            f"fix the {plugin} plugin")
    if data.train_x.shape[1:] != data.test_x.shape[1:]:
        raise DataError(f"{where} gave training images {tuple(data.train_x.shape[1:])} and held-out images "
                        f"{tuple(data.test_x.shape[1:])} of different shapes; fix the {plugin} plugin")

    def split(x: torch.Tensor, y: torch.Tensor, factors: torch.Tensor | None) -> TensorImages:
        x = x if x.dtype == torch.uint8 else x.float()
        return TensorImages(x, y.long(), None if factors is None else factors.double().numpy())

    return Splits(data.name, split(data.train_x, data.train_y, data.train_factors),
                  split(data.test_x, data.test_y, data.test_factors), tuple(data.factor_names))


def _check_split(where: str, plugin: str, name: str, split: object, factor_names: tuple[str, ...]) -> None:
    if not isinstance(split, ImageSet):
        raise DataError(f"{where} gave its {name} split as {type(split).__name__}, not a vaezoo ImageSet; "
                        f"fix the {plugin} plugin")
    labels = split.labels
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.ndim != 1:
        raise DataError(f"{where} gave {name} labels that are not an int64 tensor [N]; fix the {plugin} plugin")
    if split.dtype not in STORED_DTYPES or len(split.shape) < 1:
        raise DataError(f"{where} gave {name} images {split.dtype} {split.shape}; images are uint8 or float32 "
                        f"[C, ...]; fix the {plugin} plugin")
    factors = split.factors
    if factors is not None and (not isinstance(factors, np.ndarray) or factors.shape != (len(split), len(factor_names))):
        raise DataError(f"{where} gave {name} factors that are not a float64 array [{len(split)}, "
                        f"{len(factor_names)}] (one column per factor name); fix the {plugin} plugin")


def _check_loaded(entry: Entry, data: object) -> Splits:
    """What the loader of `entry` returned as Splits: new-style Splits checked as they are, an old-style
    Dataset of tensors checked and wrapped; anything else a DataError naming its plugin."""
    where = f"dataset {entry.qualified_name!r}: its loader {getattr(entry.obj, '__qualname__', entry.obj)}"
    if isinstance(data, Dataset):
        return _check_tensors(where, entry.plugin, data)
    if not isinstance(data, Splits):
        raise DataError(f"{where} returned {type(data).__name__}, not vaezoo Splits or a vaezoo.Dataset; "
                        f"fix the {entry.plugin} plugin")
    data.factor_names = tuple(data.factor_names)
    for name in ("train", "test"):
        _check_split(where, entry.plugin, name, getattr(data, name), data.factor_names)
    if data.train.shape != data.test.shape:
        raise DataError(f"{where} gave training images {data.train.shape} and held-out images {data.test.shape} "
                        f"of different shapes; fix the {entry.plugin} plugin")
    return data


def load_dataset(
    name: str, data_dir: str | os.PathLike[str] | None = None, *, limit: int | None = None, **options: Any
) -> Splits:
    """Load the dataset registered as `name` (or `plugin:name`); `data_dir` says where its files are; options
    go to its loader (image_size, ...).

    An unknown name gets close matches. An option the loader does not take is a DataError naming the flag and
    the datasets that take it; so is a `data_dir` given to a loader that reads no files. `limit` keeps the first
    N training examples of a fixed shuffle; a loader that names `limit` itself (dsprites, whose training split
    is already in a fixed shuffled order) reads only those. Either way the limited Splits still give the whole
    training split when asked (Splits.full_train: the canonical feature network is trained on it). What the
    loader returns is checked (_check_loaded)."""
    registry = get_registry()
    entry = registry.get("dataset", name)
    loader = entry.obj
    if _takes(loader, "data_dir"):
        options["data_dir"] = Path(data_dir) if data_dir is not None else None
    elif data_dir is not None:
        raise DataError(f"the {name} dataset reads no files and takes no --data-dir; leave it out")
    for option in options:
        if not _takes(loader, option):
            flag = OPTION_FLAGS.get(option, f"--data-option {option}")
            takers = [n for n in registry.names("dataset") if _takes(registry.get("dataset", n).obj, option)]
            raise DataError(f"{flag} does not apply to the {name} dataset; it is for {' and '.join(takers) or 'no dataset'}")
    if limit is not None:
        _check_limit(limit)
    if limit is not None and "limit" in inspect.signature(loader).parameters:
        data = _check_loaded(entry, loader(limit=limit, **options))
        if data.whole_train is None:  # the whole split, loaded again only when asked for (once)
            data.whole_train = functools.cache(lambda: _check_loaded(entry, loader(**options)).train)
        return data
    data = _check_loaded(entry, loader(**options))
    return data if limit is None else limit_training(data, limit)


def check_labels(data: Splits, num_classes: int) -> None:
    """DataError unless every label of `data` is a class 0..num_classes-1 of a conditional model."""
    for split, y in (("training", data.train.labels), ("held-out", data.test.labels)):
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise DataError(
                f"{data.name}: {split} labels run {int(y.min())}..{int(y.max())}, but this conditional model has "
                f"{num_classes} classes (labels 0..{num_classes - 1}); relabel the data or use an unconditional variant"
            )
