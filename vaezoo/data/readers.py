"""Readers for image data on disk: IDX files, folders of PNG/JPEG images, and .npy/.npz arrays.

Each returns uint8 or float arrays and raises DataError naming the file and the problem.
"""
from __future__ import annotations

import gzip
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np

from vaezoo.errors import DataError

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4")}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


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


def read_image_folder(folder: Path, size: int, channels: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images under `folder` resized to size x size: (uint8 [N, C, H, W], labels, class names).

    Images in sub-folders take the sub-folder's name as their class; images directly in `folder` are class 0.
    """
    from PIL import Image, UnidentifiedImageError

    if not folder.is_dir():
        raise DataError(f"the image folder {folder} does not exist")
    if channels not in (1, 3):
        raise DataError(f"an image folder is read with 1 or 3 channels, got {channels}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"the image folder {folder} holds no PNG or JPEG images")
    classes = sorted({p.parent.relative_to(folder).as_posix() for p in files})
    mode = "L" if channels == 1 else "RGB"
    images, labels = [], []
    for path in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as image:
                    image.load()
                    pixels = np.asarray(image.convert(mode).resize((size, size), Image.BILINEAR), dtype=np.uint8)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DataError(f"the image {path} is too large to decode safely ({exc}); shrink or remove it") from exc
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
            raise DataError(f"cannot read the image {path}: {exc}") from exc
        images.append(pixels[None] if channels == 1 else pixels.transpose(2, 0, 1))
        labels.append(classes.index(path.parent.relative_to(folder).as_posix()))
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def _as_nchw(path: Path, x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[1] in (1, 3):
        return x
    if x.ndim == 4 and x.shape[3] in (1, 3):
        return x.transpose(0, 3, 1, 2)
    raise DataError(f"{path}: images must be [N, H, W], [N, C, H, W] or [N, H, W, C] with C 1 or 3, got {x.shape}")


def scaled_pixels(path: Path, x: np.ndarray) -> np.ndarray:
    """Pixels read from `path` as float32 in [0, 1]: uint8 is divided by 255, floats must already lie in [0, 1]."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{path}: pixels must be uint8 or float in [0, 1], got dtype {x.dtype}")
    if x.size and (not np.isfinite(x).all() or x.min() < 0 or x.max() > 1):
        raise DataError(f"{path}: float pixels must be finite and lie in [0, 1]")
    return x.astype(np.float32)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Images (float32 [N, C, H, W] in [0, 1]) and labels from .npy (images only) or .npz.

    An .npz holds `x` (and optionally `y`), or `x_train`/`x_test` (and optionally `y_train`/`y_test`).
    Returned keys: x, y (or x_train, y_train, x_test, y_test); labels default to zeros.
    """
    if not path.is_file():
        raise DataError(f"the array file {path} does not exist")
    try:
        loaded = np.load(path, allow_pickle=False)
        arrays = {"x": loaded} if isinstance(loaded, np.ndarray) else {k: loaded[k] for k in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path} as .npy/.npz: {exc}") from exc
    if path.suffix == ".npz" and "x" not in arrays and not {"x_train", "x_test"} <= set(arrays):
        raise DataError(f"{path} must hold an array 'x', or 'x_train' and 'x_test'; it holds {sorted(arrays)}")
    result = {}
    for split in ("", "_train", "_test"):
        if f"x{split}" not in arrays:
            continue
        x = scaled_pixels(path, _as_nchw(path, arrays[f"x{split}"]))
        y = arrays.get(f"y{split}", np.zeros(len(x), dtype=np.int64))
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: y{split} must be {len(x)} integer labels, got shape {y.shape} dtype {y.dtype}")
        if len(x) == 0:
            raise DataError(f"{path}: x{split} holds no images")
        result[f"x{split}"], result[f"y{split}"] = x, y.astype(np.int64)
    return result
