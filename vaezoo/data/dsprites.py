"""dSprites (Matthey et al., 2017), rendered by vaezoo: 64x64 binary images of a square, an ellipse and a
heart at 6 scales, 40 orientations and 32x32 positions, 737,280 in all, with their factor values.

The images are rendered once, deterministically, into a cache file of packed bits (one 512-byte row per
image, in factor order) with a checksum verified whenever the dataset is loaded (a damaged cache is told and
rendered again). Batches read their rows from it by memory map and unpack only those, as uint8 0/255 (scaled
to {0, 1} per batch like any uint8 images); the factor values are computed from the indices, in memory.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vaezoo.cache import cache_dir
from vaezoo.data.checked_cache import checked_cache
from vaezoo.data.mapped_arrays import FileMap, npy_layout
from vaezoo.data.shapes import SHAPES, place_everywhere, shape_mask
from vaezoo.data.splits import ImageSet, Splits
from vaezoo.errors import DataError

VERSION = 1  # bump when the rendering changes: the cache file is named after it
SIZE = 64
FACTOR_NAMES = ("shape", "scale", "orientation", "position_x", "position_y")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, 40)  # as in dSprites: 0 and 2 pi both appear
POSITIONS = np.linspace(0.0, 1.0, 32)
GRID = (len(SHAPES), len(SCALES), len(ORIENTATIONS), len(POSITIONS), len(POSITIONS))
COUNT = int(np.prod(GRID))  # 737,280
HALF_SIZE = 8.8  # pixels from centre to edge at scale 1 (no edge falls exactly half-way across a pixel)
WINDOW = 27  # odd, > 2 * HALF_SIZE * sqrt(2): holds a square turned 45 degrees
CENTRES = 16 + np.arange(len(POSITIONS))  # pixel centres 16..47: one pixel per position step
HELD_OUT = 5_000  # enough for every metric; evaluating more each epoch costs CPU runs minutes
ROW_BYTES = SIZE * SIZE // 8


def factor_values(indices: np.ndarray) -> np.ndarray:
    """float64 [N, 5] factor values of images by index: shape (0, 1, 2), scale, orientation (radians), x, y."""
    shape, scale, orientation, x, y = np.unravel_index(indices, GRID)
    return np.stack([shape.astype(np.float64), SCALES[scale], ORIENTATIONS[orientation], POSITIONS[x], POSITIONS[y]], 1)


def _masks_of(shape: int, scale: int, orientation: int) -> np.ndarray:
    """bool [32, 32, 64, 64]: the sprite at every (x, y) position."""
    mask = shape_mask(SHAPES[shape], HALF_SIZE * SCALES[scale], ORIENTATIONS[orientation], WINDOW)
    return place_everywhere(mask, SIZE, CENTRES)


def render(indices: np.ndarray) -> np.ndarray:
    """bool [N, 64, 64] images by index, drawn directly (without the cache)."""
    indices = np.asarray(indices, dtype=np.int64)
    shape, scale, orientation, x, y = np.unravel_index(indices, GRID)
    out = np.empty((len(indices), SIZE, SIZE), dtype=bool)
    for key in sorted(set(zip(shape.tolist(), scale.tolist(), orientation.tolist()))):
        rows = np.flatnonzero((shape == key[0]) & (scale == key[1]) & (orientation == key[2]))
        out[rows] = _masks_of(*key)[x[rows], y[rows]]
    return out


def cache_path() -> Path:
    return cache_dir() / f"dsprites-v{VERSION}.npy"


def _fill_cache(f) -> None:
    """Render every image in index order as packed bits [COUNT, 512], streamed into f."""
    np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (COUNT, ROW_BYTES)})
    for shape in range(GRID[0]):
        for scale in range(GRID[1]):
            for orientation in range(GRID[2]):
                images = _masks_of(shape, scale, orientation).reshape(-1, SIZE * SIZE)
                f.write(np.packbits(images, axis=1).tobytes())


def verified_cache() -> Path:
    """The cache file, its checksum verified; rendered when missing, re-rendered (and told) when damaged."""
    key = {"version": VERSION, "grid": list(GRID), "row_bytes": ROW_BYTES}
    return checked_cache(cache_path(), key, "the dSprites cache", _fill_cache,
                         announce=f"rendering dSprites once into {cache_path()}")


def _file(path: Path) -> FileMap:
    layout = npy_layout(path)
    if layout.shape != (COUNT, ROW_BYTES) or layout.dtype != np.uint8:
        raise DataError(f"the dSprites cache {path} holds {layout.shape} {layout.dtype}, not ({COUNT}, {ROW_BYTES}) "
                        "uint8; delete it")
    return FileMap(path, layout)


def packed_images() -> np.ndarray:
    """The memory-mapped cache of all images as packed bits [737280, 512], verified, rendered on first use."""
    return _file(verified_cache()).array()


def unpack(rows: np.ndarray) -> torch.Tensor:
    """Packed rows [N, 512] as uint8 images [N, 1, 64, 64] in {0, 255}."""
    return torch.from_numpy(np.unpackbits(rows, axis=1).reshape(-1, 1, SIZE, SIZE) * np.uint8(255))


def read_images(indices: np.ndarray) -> torch.Tensor:
    """uint8 [N, 1, 64, 64] images in {0, 255} by index, read from the verified cache (only those rows)."""
    return unpack(_file(verified_cache()).take(np.asarray(indices, dtype=np.int64)))


class DspritesImages(ImageSet):
    """dSprites images by index into the cache, unpacked per batch (stored as uint8 0/255); the cache is
    mapped in the process that reads, on its first read."""

    def __init__(self, file: FileMap, indices: np.ndarray, factors: np.ndarray) -> None:
        super().__init__((1, SIZE, SIZE), torch.uint8, torch.from_numpy(factors[:, 0].astype(np.int64)), factors)
        self.file, self.indices = file, np.asarray(indices, dtype=np.int64)

    def read(self, rows: np.ndarray) -> torch.Tensor:
        return unpack(self.file.take(self.indices[np.asarray(rows, dtype=np.int64)]))


def split_order() -> np.ndarray:
    """A fixed shuffle of all indices: the first HELD_OUT are held out, the rest are the training set."""
    return np.random.default_rng(0).permutation(COUNT)


def load_dsprites(data_dir: Path | None = None, limit: int | None = None) -> Splits:
    """dSprites: 732,280 training images (or the first `limit` of their fixed shuffle) and 5,000 held out,
    read per batch from the packed-bit cache, labelled by shape, with all five factor values."""
    if data_dir is not None:
        raise DataError("dsprites is rendered by vaezoo and takes no --data-dir")
    file = _file(verified_cache())
    order = split_order()
    test, train = order[:HELD_OUT], order[HELD_OUT:]
    if limit is not None:
        train = train[:limit]
    return Splits("dsprites", DspritesImages(file, train, factor_values(train)),
                  DspritesImages(file, test, factor_values(test)), factor_names=FACTOR_NAMES)
