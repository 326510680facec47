"""Sample sharpness: the variance of each image's Laplacian (a standard blur measure; Pech-Pacheco et al., 2000),
higher for sharper images. Blurry VAE samples score below the data; a GAN's score closer to it."""
from __future__ import annotations

import numpy as np

from vaezoo.errors import MetricInputError


def sharpness(images: object) -> float:
    """Mean over images and channels of the variance of the 4-neighbour Laplacian over the interior pixels;
    images [N, C, H, W] (or [N, H, W]) with H, W >= 3. 0 for flat images."""
    x = np.asarray(images)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise MetricInputError(f"images must be numeric, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or len(x) == 0 or min(x.shape[-2:]) < 3:
        raise MetricInputError(f"images must be [N, C, H, W] or [N, H, W] with N >= 1 and H, W >= 3, got shape {x.shape}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise MetricInputError("images hold NaN or infinite values")
    laplacian = (x[..., :-2, 1:-1] + x[..., 2:, 1:-1] + x[..., 1:-1, :-2] + x[..., 1:-1, 2:]
                 - 4.0 * x[..., 1:-1, 1:-1])
    return float(laplacian.reshape(*x.shape[:2], -1).var(axis=-1).mean())
