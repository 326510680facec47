"""Images in a .npy file, read by memory map: only the rows a batch asks for are read, in the process that
reads them (a DataLoader worker opens its own map on its first read; the set pickles as a path), and the
pages read are handed back as an epoch goes on, so resident memory stays bounded (FileMap).

The header is checked against the file's size before anything is mapped or allocated, so a header promising
more than the file holds is one clear error, not a MemoryError or a crash on the first read. uint8 pixels are
returned as uint8; float pixels as float32, checked per batch to be finite and in [0, 1], naming the row.
"""
from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vaezoo.data.splits import ImageSet
from vaezoo.errors import DataError


@dataclass(frozen=True)
class NpyLayout:
    """What a .npy header says: the array's shape and dtype, and where its data starts."""

    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int


def read_npy_header(path: Path, f) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from the .npy header at f's position (format 1.0 or 2.0)."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise DataError(f"{path}: .npy format version {version[0]}.{version[1]} is not read here; save it with np.save")


def npy_layout(path: Path, size: int | None = None) -> NpyLayout:
    """The layout of the .npy file `path` (or of `size` bytes of it), its header checked against its length."""
    try:
        with open(path, "rb") as f:
            shape, fortran_order, dtype = read_npy_header(path, f)
            offset = f.tell()
        size = os.stat(path).st_size if size is None else size
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise DataError(f"{path} is not a readable .npy file: {exc}") from exc
    if dtype.hasobject:
        raise DataError(f"{path} holds Python objects (pickled); vaezoo reads numeric arrays only")
    if fortran_order and len(shape) > 1:
        raise DataError(f"{path} is stored in Fortran order, which cannot be read by rows; "
                        "save it with np.save(path, np.ascontiguousarray(x))")
    expected = offset + int(np.prod(shape, dtype=object)) * dtype.itemsize
    if expected != size:
        raise DataError(f"{path}: its header promises {' x '.join(map(str, shape)) or 'a scalar'} {dtype} "
                        f"({expected:,} bytes), but the file holds {size:,} bytes; it is truncated or damaged")
    return NpyLayout(tuple(shape), dtype, offset)


def image_axes(path: Path, shape: tuple[int, ...]) -> str:
    """How images lie in an array of `shape`: "nhw", "nchw" or "nhwc" (C 1 or 3)."""
    if len(shape) == 3:
        return "nhw"
    if len(shape) == 4 and shape[1] in (1, 3):
        return "nchw"
    if len(shape) == 4 and shape[3] in (1, 3):
        return "nhwc"
    raise DataError(f"{path}: images must be [N, H, W], [N, C, H, W] or [N, H, W, C] with C 1 or 3, got {shape}")


def as_nchw(x: np.ndarray, axes: str) -> np.ndarray:
    """Rows of images laid out as `axes`, as [n, C, H, W]."""
    if axes == "nhw":
        return x[:, None]
    return x.transpose(0, 3, 1, 2) if axes == "nhwc" else x


def check_pixel_dtype(path: Path, dtype: np.dtype) -> torch.dtype:
    """The stored dtype images of `dtype` are read as: uint8, or float32 for floats; anything else is refused."""
    if dtype == np.uint8:
        return torch.uint8
    if np.issubdtype(dtype, np.floating):
        return torch.float32
    raise DataError(f"{path}: pixels must be uint8 or float in [0, 1], got dtype {dtype}")


def checked_floats(path: Path, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """x (float, one image per row) as float32, if every pixel is finite and in [0, 1]; else a DataError naming
    the first bad row (`rows` are the rows' indices in the file)."""
    x = x.astype(np.float32, copy=False)
    flat = x.reshape(len(x), -1)
    bad = ~(np.isfinite(flat) & (flat >= 0) & (flat <= 1)).all(axis=1)
    if bad.any():
        raise DataError(f"{path}: row {int(rows[np.argmax(bad)])}: float pixels must be finite and lie in [0, 1]")
    return x


class FileMap:
    """A read-only memory map of the array in a .npy file, opened in the process that reads it (pickled, it is
    only the path and layout). Rows are copied out of it; after every RESIDENT_LIMIT bytes read, its pages are
    handed back (madvise DONTNEED: the OS's page cache keeps them, so reading them again is cheap), so an epoch
    over a file larger than memory leaves this process's resident memory bounded."""

    RESIDENT_LIMIT = 64 << 20
    FAULT_AROUND = 64 << 10  # Linux maps up to this much around each page that a read faults in

    def __init__(self, path: Path, layout: NpyLayout) -> None:
        self.path, self.layout = Path(path), layout
        self._mm: mmap.mmap | None = None
        self._array: np.ndarray | None = None
        self._read = 0

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_mm": None, "_array": None, "_read": 0}

    def array(self) -> np.ndarray:
        """The whole array, mapped (the file is checked against its layout first: it may have changed)."""
        if self._array is None:
            if npy_layout(self.path) != self.layout:
                raise DataError(f"{self.path} changed while it was being read; load the dataset again")
            with open(self.path, "rb") as f:
                self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            count = int(np.prod(self.layout.shape, dtype=np.int64))
            self._array = np.frombuffer(self._mm, self.layout.dtype, count, self.layout.offset).reshape(self.layout.shape)
        return self._array

    def take(self, rows: np.ndarray) -> np.ndarray:
        """A copy of the rows `rows` (int64), in that order; the file is read in row order."""
        order = np.argsort(rows, kind="stable")
        block = np.empty((len(rows), *self.layout.shape[1:]), dtype=self.layout.dtype)
        try:
            block[order] = self.array()[rows[order]]
        except OSError as exc:
            raise DataError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        self._read += len(rows) * max(block[:1].nbytes, self.FAULT_AROUND)
        if self._read > self.RESIDENT_LIMIT and hasattr(mmap, "MADV_DONTNEED"):
            self._mm.madvise(mmap.MADV_DONTNEED)
            self._read = 0
        return block


class MappedImages(ImageSet):
    """The images at `rows` of a .npy file of images (laid out as `axes`), read by memory map per batch."""

    def __init__(self, path: Path, layout: NpyLayout, axes: str, rows: np.ndarray, labels: torch.Tensor,
                 factors: np.ndarray | None = None) -> None:
        shape = as_nchw(np.empty((0, *layout.shape[1:]), dtype=np.uint8), axes).shape[1:]
        super().__init__(shape, check_pixel_dtype(path, layout.dtype), labels, factors)
        self.path, self.axes, self.file = Path(path), axes, FileMap(path, layout)
        self.rows = np.asarray(rows, dtype=np.int64)

    def read(self, rows: np.ndarray) -> torch.Tensor:
        source = self.rows[np.asarray(rows, dtype=np.int64)]
        block = self.file.take(source)
        if self.dtype == torch.float32:
            block = checked_floats(self.path, block, source)
        return torch.from_numpy(np.ascontiguousarray(as_nchw(block, self.axes)))
