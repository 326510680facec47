"""The `arrays` dataset: images (and labels) from a .npy or .npz file given as --data-dir.

A .npy file of images is memory-mapped and read by rows, per batch (any size works; 10% held out, labels 0).
An .npz is a zip, which cannot be mapped: it is loaded into memory (fine for what fits, and checked whole):
`x` (and optionally `y`; 10% held out), or `x_train`/`x_test` (and optionally `y_train`/`y_test`). Each
member's header is checked against its size before it is loaded. Images are [N, H, W], [N, C, H, W] or
[N, H, W, C] with C 1 or 3; uint8 pixels stay uint8, float pixels must be finite and in [0, 1].
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from vaezoo.data.held_out_rows import held_out_count, split_rows
from vaezoo.data.mapped_arrays import (
    MappedImages,
    as_nchw,
    check_pixel_dtype,
    checked_floats,
    image_axes,
    npy_layout,
    read_npy_header,
)
from vaezoo.data.splits import Splits, TensorImages
from vaezoo.errors import DataError


def _mapped(path: Path) -> Splits:
    layout = npy_layout(path)
    axes = image_axes(path, layout.shape)
    check_pixel_dtype(path, layout.dtype)
    if layout.shape[0] == 0:
        raise DataError(f"{path}: x holds no images")
    train, test = split_rows(f"arrays:{path.name}", layout.shape[0], held_out_count(layout.shape[0]))
    sets = [MappedImages(path, layout, axes, rows, torch.zeros(len(rows), dtype=torch.int64)) for rows in (train, test)]
    return Splits(f"arrays:{path.name}", *sets)


def _zip_members(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz, each member's header checked against its size before it is read."""
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    shape, _, dtype = read_npy_header(path, member)
                    promised = member.tell() + int(np.prod(shape, dtype=object)) * dtype.itemsize
                if dtype.hasobject:
                    raise DataError(f"{path}: {info.filename} holds Python objects (pickled); vaezoo reads numeric arrays only")
                if promised != info.file_size:
                    raise DataError(f"{path}: the header of {info.filename} promises {' x '.join(map(str, shape))} "
                                    f"{dtype} ({promised:,} bytes), but it holds {info.file_size:,} bytes")
                with archive.open(info) as member:
                    arrays[info.filename[:-4]] = np.lib.format.read_array(member, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path} as .npz: {exc}") from exc
    return arrays


def _in_memory(path: Path, x: np.ndarray, y: np.ndarray | None, split: str) -> TensorImages:
    images = as_nchw(x, image_axes(path, x.shape))
    if check_pixel_dtype(path, images.dtype) == torch.float32:
        try:
            images = checked_floats(path, images, np.arange(len(images)))
        except DataError:
            raise DataError(f"{path}: x{split}: float pixels must be finite and lie in [0, 1]") from None
    if len(images) == 0:
        raise DataError(f"{path}: x{split} holds no images")
    y = np.zeros(len(images), dtype=np.int64) if y is None else y
    if y.ndim != 1 or len(y) != len(images) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: y{split} must be {len(images)} integer labels, got shape {y.shape} dtype {y.dtype}")
    return TensorImages(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(y.astype(np.int64)))


def _zipped(path: Path) -> Splits:
    arrays = _zip_members(path)
    name = f"arrays:{path.name}"
    if "x" in arrays:
        whole = _in_memory(path, arrays["x"], arrays.get("y"), "")
        train, test = split_rows(name, len(whole), held_out_count(len(whole)))
        return Splits(name, *(TensorImages(whole.images[rows], whole.labels[rows]) for rows in (train, test)))
    if not {"x_train", "x_test"} <= set(arrays):
        raise DataError(f"{path} must hold an array 'x', or 'x_train' and 'x_test'; it holds {sorted(arrays)}")
    train, test = (_in_memory(path, arrays[f"x{s}"], arrays.get(f"y{s}"), s) for s in ("_train", "_test"))
    if train.shape != test.shape or train.dtype != test.dtype:
        raise DataError(f"{path}: x_train {train.shape} {train.dtype} and x_test {test.shape} {test.dtype} differ "
                        "in image shape or dtype")
    return Splits(name, train, test)


def load_arrays(data_dir: Path | None) -> Splits:
    """Images from a .npy (memory-mapped) or .npz (in memory) file given as --data-dir; 10% held out unless split."""
    if data_dir is None:
        raise DataError("the arrays dataset needs --data-dir")
    path = Path(data_dir)
    if not path.is_file():
        raise DataError(f"the array file {path} does not exist")
    return _zipped(path) if zipfile.is_zipfile(path) else _mapped(path)
