"""colour-shapes: a small ground-truth set of 32x32 RGB images with five independent factors, shape (square,
ellipse, heart), colour (6 pure hues), size (3), and x and y position (8 each): 3,456 images, 10% held out.

Every channel is 0 or 1 (stored as uint8 0/255), so Bernoulli likelihoods fit it; rendered in a fraction of a
second, not cached, and small enough to stay in memory.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vaezoo.data.shapes import SHAPES, place_everywhere, shape_mask
from vaezoo.data.splits import Splits, TensorImages
from vaezoo.errors import DataError

SIZE = 32
FACTOR_NAMES = ("shape", "colour", "size", "position_x", "position_y")
COLOURS = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1]], dtype=np.float32)
HUES = np.arange(len(COLOURS)) / len(COLOURS)  # red, yellow, green, cyan, blue, magenta
HALF_SIZES = np.array([2.8, 4.2, 5.6])  # no edge falls exactly half-way across a pixel
CENTRES = 8 + 2 * np.arange(8)  # pixel centres 8..22
WINDOW = 13
GRID = (len(SHAPES), len(COLOURS), len(HALF_SIZES), len(CENTRES), len(CENTRES))
HELD_OUT_FRACTION = 0.1


def render_all() -> tuple[np.ndarray, np.ndarray]:
    """float32 images [3456, 3, 32, 32] in factor order and their factor values [3456, 5]."""
    masks = np.stack([
        np.stack([place_everywhere(shape_mask(shape, half, 0.0, WINDOW), SIZE, CENTRES) for half in HALF_SIZES])
        for shape in SHAPES
    ])  # [shape, size, x, y, H, W]
    # [shape, colour, size, x, y, C, H, W]
    images = masks[:, None, :, :, :, None].astype(np.float32) * COLOURS[None, :, None, None, None, :, None, None]
    images = images.reshape(-1, 3, SIZE, SIZE)
    shape, colour, size, x, y = np.unravel_index(np.arange(len(images)), GRID)
    factors = np.stack([shape, HUES[colour], HALF_SIZES[size] / HALF_SIZES[-1], x / (GRID[3] - 1), y / (GRID[4] - 1)], 1)
    return images, factors.astype(np.float64)


def load_colour_shapes(data_dir: Path | None = None) -> Splits:
    """colour-shapes, labelled by shape, with a fixed held-out split of 10%, held in memory as uint8 0/255."""
    if data_dir is not None:
        raise DataError("colour-shapes is rendered by vaezoo and takes no --data-dir")
    images, factors = render_all()
    order = np.random.default_rng(0).permutation(len(images))
    held = round(HELD_OUT_FRACTION * len(images))
    x = torch.from_numpy((images * 255).astype(np.uint8))
    labels = torch.from_numpy(factors[:, 0].astype(np.int64))
    test, train = order[:held], order[held:]
    return Splits("colour-shapes", TensorImages(x[train], labels[train], factors[train]),
                  TensorImages(x[test], labels[test], factors[test]), factor_names=FACTOR_NAMES)
