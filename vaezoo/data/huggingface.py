"""The `huggingface` dataset: a Hugging Face `datasets` dataset on local disk, read through Arrow by rows.

--data-dir is a `save_to_disk` directory (of a DatasetDict, or of one Dataset), a folder of Parquet files
(split by Hugging Face's file-name conventions: train-*.parquet, test/..., data/train-00000-of-00001.parquet)
or one Parquet file. Parquet is converted once into memory-mappable Arrow files under vaezoo's cache folder
(by `datasets` itself); a `save_to_disk` directory is mapped where it is. Nothing is downloaded: `datasets` is
used offline. Only the rows a batch asks for are read and decoded, in the process that reads them.

Options: image_column (default "image": an Image feature, decoded and resized to image_size with `channels`,
or an array feature [H, W], [C, H, W] or [H, W, C] of uint8 or floats in [0, 1]), label_column (default
"label" when there is one; integer or ClassLabel, or strings numbered in sorted order; "" for none),
train_split and test_split (default "train" and "test"; without a test split, 10% of the training split is
held out). Needs the optional extra: pip install 'vaezoo[hf]'.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaezoo.cache import cache_dir
from vaezoo.data.held_out_rows import held_out_count, split_rows
from vaezoo.data.image_folder import MAX_IMAGE_SIZE, image_pixels
from vaezoo.data.mapped_arrays import checked_floats
from vaezoo.data.splits import ImageSet, Splits
from vaezoo.errors import DataError

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F", "P"}


def _datasets() -> Any:
    """The `datasets` package, made offline (it may read local files only)."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import datasets
    except ImportError:
        raise DataError("the huggingface dataset needs the `datasets` package: pip install 'vaezoo[hf]'") from None
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True
    return datasets


def _open_splits(path: Path) -> dict[str, Any]:
    """The splits (name -> datasets.Dataset) of a save_to_disk directory, a Parquet folder or a Parquet file."""
    datasets = _datasets()
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
            loaded = datasets.load_from_disk(str(path))
        elif path.is_file() and path.suffix == ".parquet" or path.is_dir() and any(path.rglob("*.parquet")):
            where = {"data_files": str(path)} if path.is_file() else {"data_dir": str(path)}
            loaded = datasets.load_dataset("parquet", **where, cache_dir=str(cache_dir("huggingface")),
                                           download_config=datasets.DownloadConfig(local_files_only=True))
        else:
            raise DataError(f"{path} is neither a `save_to_disk` directory (no dataset_dict.json or state.json) "
                            "nor Parquet files")
    except DataError:
        raise
    except Exception as exc:  # datasets raises many kinds (FileNotFoundError, ArrowInvalid, DatasetGenerationError)
        raise DataError(f"cannot read the Hugging Face dataset {path}: {type(exc).__name__}: {exc}") from exc
    finally:
        if bars:
            datasets.enable_progress_bars()
    return dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}


def _innermost(feature: Any) -> Any:
    while hasattr(feature, "feature"):  # Sequence / List / LargeList
        feature = feature.feature
    return feature


def _labels(path: Path, split: Any, column: str | None) -> torch.Tensor:
    if column is None:
        return torch.zeros(len(split), dtype=torch.int64)
    values = split.data.column(column).to_numpy(zero_copy_only=False)
    if values.dtype.kind in "iu":
        return torch.from_numpy(values.astype(np.int64))
    if values.dtype.kind in "OUS" and all(isinstance(v, str) for v in values):
        names, index = np.unique(values.astype(str), return_inverse=True)
        return torch.from_numpy(index.astype(np.int64))
    raise DataError(f"{path}: the label column {column!r} must hold integers or strings, got {values.dtype}")


class ArrowImages(ImageSet):
    """Rows `rows` of a datasets.Dataset's image column, read and decoded per batch."""

    def __init__(self, path: Path, split: Any, column: str, rows: np.ndarray, labels: torch.Tensor,
                 shape: tuple[int, ...], dtype: torch.dtype, decode: dict[str, Any]) -> None:
        super().__init__(shape, dtype, labels)
        self.path, self.column, self.rows, self.decode = path, column, np.asarray(rows, dtype=np.int64), decode
        self.table = split.select_columns([column])
        if not decode["image"]:
            self.table = self.table.with_format("numpy")

    def _item(self, value: Any, row: int) -> np.ndarray:
        if self.decode["image"]:
            if value is None:
                raise DataError(f"{self.path}: row {row} of {self.column!r} holds no image")
            return image_pixels(value, self.shape[1], self.shape[0])
        x = np.asarray(value)
        x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1) if self.decode["channels_last"] else x
        if x.shape != self.shape:
            raise DataError(f"{self.path}: row {row} of {self.column!r} is shaped {tuple(np.asarray(value).shape)}, "
                            f"unlike the rows before it ({self.shape}); every image must have one shape")
        return x

    def read(self, rows: np.ndarray) -> torch.Tensor:
        source = self.rows[np.asarray(rows, dtype=np.int64)]
        try:
            values = self.table[source.tolist()][self.column]
        except Exception as exc:  # Arrow, PIL and datasets errors alike: name the data and the rows
            raise DataError(f"cannot read rows {source[:4].tolist()}... of {self.path}: {type(exc).__name__}: {exc}") from exc
        out = np.empty((len(source), *self.shape), dtype=np.float32 if self.dtype == torch.float32 else np.uint8)
        for i, (value, row) in enumerate(zip(values, source)):
            try:
                item = self._item(value, int(row))
            except OSError as exc:
                raise DataError(f"{self.path}: cannot decode the image in row {int(row)}: {exc}") from exc
            if self.dtype == torch.float32:
                item = checked_floats(self.path, item[None], source[i:i + 1])[0]
            out[i] = item
        return torch.from_numpy(out)


def _image_layout(path: Path, split: Any, column: str, image_size: int | None,
                  channels: int | None) -> tuple[tuple[int, ...], torch.dtype, dict[str, Any]]:
    """(shape, stored dtype, how to decode) of the image column, from its feature and its first row."""
    datasets = _datasets()
    feature = split.features[column]
    first = split[0][column]
    if isinstance(feature, datasets.Image):
        if first is None:
            raise DataError(f"{path}: row 0 of {column!r} holds no image")
        size = image_size if image_size is not None else first.size[0]
        if first.size[0] != first.size[1] and image_size is None:
            raise DataError(f"{path}: the images are {first.size[0]}x{first.size[1]}, not square; pass image_size")
        channels = channels if channels is not None else (1 if first.mode in GRAY_MODES else 3)
        return (channels, size, size), torch.uint8, {"image": True}
    if image_size is not None or channels is not None:
        raise DataError(f"{path}: {column!r} holds arrays, which are read as they are; leave out image_size and channels")
    stored = np.dtype(getattr(_innermost(feature), "dtype", "object"))
    x = np.asarray(first)
    if x.ndim == 2:
        shape, last = (1, *x.shape), False
    elif x.ndim == 3 and x.shape[0] in (1, 3):
        shape, last = x.shape, False
    elif x.ndim == 3 and x.shape[2] in (1, 3):
        shape, last = (x.shape[2], x.shape[0], x.shape[1]), True
    else:
        raise DataError(f"{path}: {column!r} must hold images [H, W], [C, H, W] or [H, W, C] with C 1 or 3, "
                        f"got {x.shape} in row 0")
    if stored == np.uint8:
        dtype = torch.uint8
    elif np.issubdtype(stored, np.floating):
        dtype = torch.float32
    else:
        raise DataError(f"{path}: pixels of {column!r} must be uint8 or float in [0, 1], got {stored}")
    return tuple(int(s) for s in shape), dtype, {"image": False, "channels_last": last}


def load_huggingface(data_dir: Path | None, image_column: str = "image", label_column: str | None = "label",
                     train_split: str = "train", test_split: str = "test", image_size: int | None = None,
                     channels: int | None = None) -> Splits:
    """A Hugging Face dataset on local disk (save_to_disk or Parquet), read by rows through Arrow."""
    if data_dir is None:
        raise DataError("the huggingface dataset needs --data-dir: a save_to_disk directory or Parquet files")
    path = Path(data_dir)
    if not path.exists():
        raise DataError(f"the Hugging Face dataset {path} does not exist")
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int)
                                   or not 1 <= image_size <= MAX_IMAGE_SIZE):
        raise DataError(f"image_size must be a whole number of pixels in 1..{MAX_IMAGE_SIZE}, got {image_size!r}")
    if channels is not None and (channels not in (1, 3) or isinstance(channels, bool)):
        raise DataError(f"channels must be 1 or 3, got {channels!r}")
    splits = _open_splits(path)
    if train_split not in splits:
        raise DataError(f"{path} has no split {train_split!r}; its splits are {', '.join(sorted(splits))}")
    train = splits[train_split]
    columns = list(train.column_names)
    if image_column not in columns:
        raise DataError(f"{path} has no column {image_column!r}; its columns are {', '.join(columns)}")
    if label_column == "" or (label_column == "label" and "label" not in columns):
        label_column = None
    if label_column is not None and label_column not in columns:
        raise DataError(f"{path} has no label column {label_column!r}; its columns are {', '.join(columns)}")
    if len(train) == 0:
        raise DataError(f"{path}: the {train_split!r} split holds no rows")
    shape, dtype, decode = _image_layout(path, train, image_column, image_size, channels)
    name = f"huggingface:{path.name}"
    if test_split in splits:
        test = splits[test_split]
        if len(test) == 0 or image_column not in test.column_names:
            raise DataError(f"{path}: the {test_split!r} split holds no rows or no column {image_column!r}")
        parts = [(train, np.arange(len(train))), (test, np.arange(len(test)))]
    else:
        train_rows, test_rows = split_rows(name, len(train), held_out_count(len(train)))
        parts = [(train, train_rows), (train, test_rows)]
    sets = [ArrowImages(path, split, image_column, rows, _labels(path, split, label_column)[torch.from_numpy(rows)],
                        shape, dtype, decode) for split, rows in parts]
    return Splits(name, *sets)
