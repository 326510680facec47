"""Binary masks of a square, an ellipse and a heart at any size and angle, rendered by supersampling.

The shapes of dSprites (Matthey et al., 2017); vaezoo draws them itself, so nothing is downloaded.
"""
from __future__ import annotations

import numpy as np

SHAPES = ("square", "ellipse", "heart")
SUPERSAMPLE = 4  # sub-pixels per pixel side; a pixel is on when at least half of its sub-pixels are inside


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether points (u, v), in units of the shape's half-size (v pointing down), lie inside the shape."""
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 1.0
    if shape == "ellipse":
        return u**2 + (v / 0.5) ** 2 <= 1.0
    if shape == "heart":  # (x^2 + y^2 - 1)^3 <= x^2 y^3, fitted into [-1, 1]^2, point down
        x, y = 1.14 * u, 0.12 - 1.12 * v
        return (x**2 + y**2 - 1.0) ** 3 - x**2 * y**3 <= 0.0
    raise ValueError(f"unknown shape {shape!r}; shapes are {', '.join(SHAPES)}")


def shape_mask(shape: str, half_size: float, angle: float, window: int) -> np.ndarray:
    """A bool [window, window] mask of `shape` centred on the middle pixel (window is odd), `half_size`
    pixels from centre to edge, turned by `angle` radians."""
    if window % 2 != 1:
        raise ValueError(f"window must be odd so that the shape centres on a pixel, got {window}")
    sub = (np.arange(window * SUPERSAMPLE) + 0.5) / SUPERSAMPLE - window / 2.0  # sub-pixel centres
    dy, dx = np.meshgrid(sub, sub, indexing="ij")
    cos, sin = np.cos(angle), np.sin(angle)
    u = (cos * dx + sin * dy) / half_size
    v = (-sin * dx + cos * dy) / half_size
    cover = _inside(shape, u, v).reshape(window, SUPERSAMPLE, window, SUPERSAMPLE).mean(axis=(1, 3))
    return cover >= 0.5


def place_everywhere(mask: np.ndarray, size: int, centres: np.ndarray) -> np.ndarray:
    """bool [len(centres), len(centres), size, size]: `mask` centred at (row centres[j], column centres[i])
    in image [i, j] (first index: horizontal position, second: vertical)."""
    window = mask.shape[0]
    half = window // 2
    if centres.min() - half < 0 or centres.max() + half >= size:
        raise ValueError(f"a {window}-pixel mask centred at {centres.min()}..{centres.max()} leaves the {size}-pixel image")
    # image[y, x] = mask[y - c + half] = padded[y + (pad - c)] with the mask at padded[pad - half : pad + half + 1]
    pad = size
    padded = np.zeros((2 * size + window, 2 * size + window), dtype=bool)
    padded[pad - half : pad + half + 1, pad - half : pad + half + 1] = mask
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size))
    starts = pad - centres
    return windows[starts[None, :], starts[:, None]]  # [x index, y index, size, size]
