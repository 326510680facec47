"""The `folder` dataset: PNG/JPEG images under a folder (class = sub-folder), resized to image_size x
image_size with 1 or 3 channels, 10% held out.

Listing reads directory entries only (no file is opened or stat'ed), and the held-out split is drawn on the
file list, so training starts without decoding anything: images are decoded when a batch asks for them, in
the DataLoader's workers. With `prepare=True` every image is decoded and resized once into a memory-mapped
uint8 cache under vaezoo's cache folder, keyed by the file list with each file's size and modification time,
the image size and the channels, with a checksum (vaezoo.data.checked_cache): a cache that no longer matches
its folder, or is damaged, is told and rebuilt.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from vaezoo.cache import cache_dir
from vaezoo.data.checked_cache import checked_cache
from vaezoo.data.held_out_rows import held_out_count, split_rows
from vaezoo.data.mapped_arrays import MappedImages, npy_layout
from vaezoo.data.splits import ImageSet, Splits, collate_batch
from vaezoo.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_IMAGE_SIZE = 1024
CACHE_VERSION = 1  # bump when decoding or resizing changes: prepared caches are keyed by it
PREPARE_BATCH = 256


def list_images(folder: Path) -> list[str]:
    """The PNG/JPEG files under `folder`, as paths relative to it, ordered by their path components (each
    folder's entries by name, sub-folders in place); directory entries only, no file is opened or stat'ed."""
    files: list[str] = []

    def visit(directory: str, prefix: str) -> None:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda e: e.name)
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                visit(entry.path, f"{prefix}{entry.name}/")
            elif entry.name.lower().endswith(IMAGE_SUFFIXES):
                files.append(prefix + entry.name)

    visit(os.fspath(folder), "")
    return files


def class_labels(files: list[str]) -> tuple[np.ndarray, list[str]]:
    """Labels (int64) of files by their sub-folder, and the sorted class names ("." for the folder itself)."""
    parents = [p.rpartition("/")[0] or "." for p in files]
    classes = sorted(set(parents))
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index[p] for p in parents], dtype=np.int64), classes


def decode_image(path: Path, size: int, channels: int) -> np.ndarray:
    """The image file at `path` as uint8 [channels, size, size] (bilinear resize); a DataError names the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                pixels = image_pixels(image, size, channels)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"the image {path} is too large to decode safely ({exc}); shrink or remove it") from exc
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot read the image {path}: {exc}") from exc
    return pixels


def image_pixels(image, size: int, channels: int) -> np.ndarray:
    """A PIL image as uint8 [channels, size, size]: converted to L or RGB, resized bilinearly."""
    from PIL import Image

    pixels = np.asarray(image.convert("L" if channels == 1 else "RGB").resize((size, size), Image.BILINEAR),
                        dtype=np.uint8)
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


class FolderImages(ImageSet):
    """Image files under `root` (relative paths), decoded and resized when read."""

    def __init__(self, root: Path, files: np.ndarray, size: int, channels: int, labels: torch.Tensor) -> None:
        super().__init__((channels, size, size), torch.uint8, labels)
        self.root, self.files, self.size, self.channels = Path(root), files, size, channels

    def path(self, row: int) -> Path:
        return self.root / os.fsdecode(self.files[row])

    def read(self, rows: np.ndarray) -> torch.Tensor:
        out = np.empty((len(rows), *self.shape), dtype=np.uint8)
        for i, row in enumerate(np.asarray(rows, dtype=np.int64)):
            out[i] = decode_image(self.path(int(row)), self.size, self.channels)
        return torch.from_numpy(out)


def _check_options(image_size: object, channels: object) -> None:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not 1 <= image_size <= MAX_IMAGE_SIZE:
        raise DataError(f"--image-size must be a whole number of pixels in 1..{MAX_IMAGE_SIZE}, got {image_size!r}")
    if channels not in (1, 3) or isinstance(channels, bool):
        raise DataError(f"an image folder is read with 1 or 3 channels, got {channels!r}")


def _prepare_workers(count: int) -> int:
    """Worker processes to decode `count` images with: one per core (at most 8), none for a few batches."""
    if count < 4 * PREPARE_BATCH:
        return 0
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return min(cores, 8) if cores > 1 else 0


def prepared_cache(folder: Path, images: FolderImages) -> Path:
    """The verified prepared cache of every image in `images` (all of the folder, in listing order), built by
    decoding each once when it is missing, stale or damaged."""
    root = folder.resolve()
    stats = hashlib.sha256()
    for row in range(len(images)):
        try:
            st = os.stat(images.path(row))
        except OSError as exc:
            raise DataError(f"cannot read the image {images.path(row)}: {exc.strerror or exc}") from exc
        stats.update(b"%s\0%d\0%d\0" % (images.files[row], st.st_size, st.st_mtime_ns))
    key = {"version": CACHE_VERSION, "folder": str(root), "count": len(images), "files": stats.hexdigest(),
           "image_size": images.size, "channels": images.channels}
    name = hashlib.sha256(f"{root}\0{images.size}\0{images.channels}".encode("utf-8", "surrogateescape")).hexdigest()
    path = cache_dir("prepared") / f"folder-{name[:24]}.npy"

    def fill(f) -> None:
        shape = (len(images), *images.shape)
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": shape})
        loader = torch.utils.data.DataLoader(images, batch_size=PREPARE_BATCH, num_workers=_prepare_workers(len(images)),
                                             collate_fn=collate_batch)
        for batch, _ in loader:
            f.write(batch.numpy().tobytes())

    return checked_cache(path, key, f"the prepared image cache of {folder}", fill,
                         announce=f"preparing {len(images):,} images of {folder} once into {path}")


def load_image_folder(data_dir: Path | None, image_size: int = 32, channels: int = 1,
                      prepare: bool = False) -> Splits:
    """PNG/JPEG images under --data-dir (class = sub-folder), resized to image_size, 10% held out; decoded per
    batch, or once into a prepared cache with prepare=True."""
    if data_dir is None:
        raise DataError("the folder dataset needs --data-dir")
    _check_options(image_size, channels)
    if not isinstance(prepare, bool):
        raise DataError(f"prepare must be true or false, got {prepare!r}")
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DataError(f"the image folder {folder} does not exist")
    files = list_images(folder)
    if not files:
        raise DataError(f"the image folder {folder} holds no PNG or JPEG images")
    labels, _ = class_labels(files)
    name = f"folder:{folder.name}"
    train, test = split_rows(name, len(files), held_out_count(len(files)))
    encoded = np.array([os.fsencode(p) for p in files])  # compact: one fixed-width bytes array, cheap to pickle
    labels_t = torch.from_numpy(labels)
    if not prepare:
        return Splits(name, *(FolderImages(folder, encoded[rows], image_size, channels, labels_t[rows])
                              for rows in (train, test)))
    path = prepared_cache(folder, FolderImages(folder, encoded, image_size, channels, labels_t))
    layout = npy_layout(path)
    return Splits(name, *(MappedImages(path, layout, "nchw", rows, labels_t[rows]) for rows in (train, test)))
