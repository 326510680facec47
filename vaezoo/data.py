"""Datasets (images in [0, 1] as [N, C, H, W] tensors with a held-out split) and batch iteration."""
from __future__ import annotations

import difflib
import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from vaezoo.errors import DataError, UnknownNameError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4")}


@dataclass
class Dataset:
    """Training and held-out images in [0, 1], with integer labels."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed), checking its header against its size."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    dtype, ndim = np.dtype(IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated: its header is incomplete")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{path} is truncated or padded: {len(raw)} bytes, the header promises {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _find(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.exists():
            return candidate
    raise DataError(f"{directory} has no {stem}.gz or {stem}")


def load_mnist_like(name: str, data_dir: Path, install_hint: str) -> Dataset:
    """Read the four IDX files of an MNIST-format dataset."""
    if not data_dir.is_dir():
        raise DataError(f"the {name} data directory {data_dir} does not exist. {install_hint}")
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(_find(data_dir, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find(data_dir, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"{name} {split} split in {data_dir}: images {images.shape} and labels {labels.shape} do not pair up"
            )
        arrays[split] = (torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1),
                         torch.from_numpy(labels.astype(np.int64)))
    return Dataset(name, *arrays["train"], *arrays["test"])


def load_fashion_mnist(data_dir: Path | None) -> Dataset:
    hint = (
        "Get Fashion-MNIST with `apt-get install dataset-fashion-mnist` (it installs to "
        f"{FASHION_MNIST_DIR}), or pass --data-dir to a folder with the four IDX files."
    )
    return load_mnist_like("fashion-mnist", data_dir or FASHION_MNIST_DIR, hint)


def load_digits(data_dir: Path | None, held_out: int = 297) -> Dataset:
    """scikit-learn's 8x8 digits (shipped with it), scaled to [0, 1], with a fixed held-out split."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    test, train = order[:held_out], order[held_out:]
    return Dataset("digits", images[train], labels[train], images[test], labels[test])


DATASETS: dict[str, Callable[[Path | None], Dataset]] = {
    "digits": load_digits,
    "fashion-mnist": load_fashion_mnist,
}


def dataset_loader(name: str) -> Callable[[Path | None], Dataset]:
    """The loader registered under `name`; an unknown name gets close matches."""
    if name not in DATASETS:
        close = difflib.get_close_matches(name, DATASETS, n=2, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownNameError(f"unknown dataset {name!r}.{hint} Known datasets: {', '.join(DATASETS)}.")
    return DATASETS[name]


def load_dataset(name: str, data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Load a dataset by name; `data_dir` overrides where its files are read from."""
    return dataset_loader(name)(Path(data_dir) if data_dir is not None else None)


def fixed_binarization(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One reproducible Bernoulli draw of x: the binarized held-out set used for evaluation."""
    return torch.bernoulli(x, generator=torch.Generator().manual_seed(seed))


def batches(
    x: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    binarize: bool = False,
) -> Iterator[torch.Tensor]:
    """Yield batches of x, shuffled with `generator`, with a fresh Bernoulli draw per batch if `binarize`."""
    n = len(x)
    order = torch.randperm(n, generator=generator) if shuffle else None
    for start in range(0, n, batch_size):
        batch = x[order[start : start + batch_size]] if order is not None else x[start : start + batch_size]
        yield torch.bernoulli(batch, generator=generator) if binarize else batch
