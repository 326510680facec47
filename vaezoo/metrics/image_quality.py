"""Reconstruction quality of images against their originals, one value per image: PSNR, SSIM (Wang et al.,
2004: an 11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, over the window positions inside the image)
and MS-SSIM (Wang et al., 2003: five scales of 2x2 average pooling with the weights 0.0448, 0.2856, 0.3001,
0.2363, 0.1333). Images are arrays [N, C, H, W] (or [N, H, W]) of values in [0, data_range]; average the
per-image values for a set, as the literature reports them."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vaezoo.errors import MetricInputError

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
K1, K2, SIGMA, WINDOW = 0.01, 0.03, 1.5, 11


def _images(name: str, value: object) -> np.ndarray:
    x = np.asarray(value, dtype=np.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[0] == 0:
        raise MetricInputError(f"{name} must be images [N, C, H, W] or [N, H, W] with N >= 1, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise MetricInputError(f"{name} holds NaN or infinite values")
    return x


def _pair(a: object, b: object) -> tuple[np.ndarray, np.ndarray]:
    x, y = _images("images", a), _images("references", b)
    if x.shape != y.shape:
        raise MetricInputError(f"images {x.shape} and references {y.shape} must have the same shape")
    return x, y


def _check_range(data_range: float) -> float:
    if not data_range > 0:
        raise MetricInputError(f"data_range must be positive (1 for images in [0, 1], 255 for 0..255), got {data_range}")
    return float(data_range)


def psnr(images: object, references: object, *, data_range: float = 1.0) -> np.ndarray:
    """10 log10(data_range^2 / MSE) per image [N], the MSE over all its channels and pixels; inf for an exact
    copy."""
    x, y = _pair(images, references)
    mse = ((x - y) ** 2).reshape(len(x), -1).mean(1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(_check_range(data_range) ** 2 / mse)


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:
    """The normalized 1-D Gaussian of `size` taps; the 2-D window is its outer product."""
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def _check_window(window: int, h: int, w: int) -> None:
    if isinstance(window, bool) or not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise MetricInputError(f"window must be a positive odd int, got {window!r}")
    if window > min(h, w):
        raise MetricInputError(f"a {window}x{window} SSIM window does not fit images of {h}x{w}: give window <= "
                               f"{min(h, w) - (1 - min(h, w) % 2)}")


def _ssim_maps(x: torch.Tensor, y: torch.Tensor, window: int, data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(luminance x contrast-structure, contrast-structure) maps [N, C, h, w] over the window positions."""
    c = x.shape[1]
    g = torch.from_numpy(gaussian_window(window)).to(x)
    rows, cols = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, rows, groups=c), cols, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    return (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs, cs


def ssim(images: object, references: object, *, data_range: float = 1.0, window: int = WINDOW) -> np.ndarray:
    """Mean SSIM over each image's window positions and channels [N]; 1 for an exact copy. `window` (odd) may
    be lowered for images smaller than 11 pixels a side."""
    x, y = _pair(images, references)
    _check_window(window, *x.shape[2:])
    full, _ = _ssim_maps(torch.from_numpy(x), torch.from_numpy(y), window, _check_range(data_range))
    return full.flatten(1).mean(1).numpy()


def ms_ssim_scales(height: int, width: int, window: int = WINDOW) -> int:
    """How many of the five scales fit images of height x width: the window must fit the smallest."""
    scales = 1
    while scales < len(MS_SSIM_WEIGHTS) and min(height, width) // 2**scales >= window:
        scales += 1
    return scales


def ms_ssim(images: object, references: object, *, data_range: float = 1.0, window: int = WINDOW,
            scales: int | None = None) -> np.ndarray:
    """Multi-scale SSIM per image [N]: prod over scales j < M of cs_j^w_j, times SSIM_M^w_M, each the mean of its
    map per channel (negative values clipped to 0, as common implementations do), averaged over channels. All
    five scales need images of at least 176 pixels a side with the 11-pixel window; smaller images use the
    first `scales` (default: as many as fit, see ms_ssim_scales) with their weights renormalized to sum to 1."""
    x, y = _pair(images, references)
    _check_window(window, *x.shape[2:])
    fit = ms_ssim_scales(*x.shape[2:], window)
    scales = fit if scales is None else scales
    if isinstance(scales, bool) or not isinstance(scales, int) or not 1 <= scales <= fit:
        raise MetricInputError(f"scales must be 1..{fit} for {x.shape[2]}x{x.shape[3]} images with a {window}-pixel "
                               f"window, got {scales!r}")
    result = ms_ssim_tensor(torch.from_numpy(x), torch.from_numpy(y), data_range=_check_range(data_range),
                            window=window, scales=scales)
    return result.numpy()


def ms_ssim_tensor(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, window: int = WINDOW,
                   scales: int = 1) -> torch.Tensor:
    """`ms_ssim` on tensors [N, C, H, W] whose sizes and arguments are already checked, differentiable in x and y
    (the ms-ssim reconstruction term trains on it); a term clipped at 0 has zero gradient, not NaN."""
    weights = [w / sum(MS_SSIM_WEIGHTS[:scales]) for w in MS_SSIM_WEIGHTS[:scales]]
    result = x.new_ones(x.shape[:2])
    for j in range(scales):
        full, cs = _ssim_maps(x, y, window, data_range)
        value = (full if j == scales - 1 else cs).flatten(2).mean(2).clamp(min=0)
        result = result * value ** weights[j]
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return result.mean(1)
