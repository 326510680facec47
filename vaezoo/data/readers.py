"""Readers for image data on disk: IDX files (image folders: image_folder.py; .npy/.npz: arrays.py).

Each returns uint8 or float arrays and raises DataError naming the file and the problem.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from vaezoo.errors import DataError

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4")}


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


def scaled_pixels(path: Path, x: np.ndarray) -> np.ndarray:
    """Pixels read from `path` as float32 in [0, 1]: uint8 is divided by 255, floats must already lie in [0, 1]."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{path}: pixels must be uint8 or float in [0, 1], got dtype {x.dtype}")
    if x.size and (not np.isfinite(x).all() or x.min() < 0 or x.max() > 1):
        raise DataError(f"{path}: float pixels must be finite and lie in [0, 1]")
    return x.astype(np.float32)
