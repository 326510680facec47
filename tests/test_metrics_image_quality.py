"""PSNR, SSIM and MS-SSIM against closed forms and against a direct numpy computation of Wang et al. (2004):
the Gaussian-weighted statistics of every 11x11 window, position by position, written independently of the
library's separable convolutions."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from vaezoo.errors import MetricInputError
from vaezoo.metrics import ms_ssim, psnr, ssim
from vaezoo.metrics.image_quality import ms_ssim_scales

C1, C2 = 0.01**2, 0.03**2
WEIGHTS = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]


def window_2d(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    t = np.arange(size) - size // 2
    w = np.exp(-(t[:, None] ** 2 + t[None] ** 2) / (2 * sigma**2))
    return w / w.sum()


def reference_maps(a: np.ndarray, b: np.ndarray, size: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """(SSIM map, contrast-structure map) of two grey images: at each window position the weighted mean,
    variance and covariance of the window's pixels, straight from their definitions."""
    w = window_2d(size)
    pa, pb = sliding_window_view(a, (size, size)), sliding_window_view(b, (size, size))
    mu_a, mu_b = (pa * w).sum((-2, -1)), (pb * w).sum((-2, -1))
    da, db = pa - mu_a[..., None, None], pb - mu_b[..., None, None]
    var_a, var_b, cov = (da * da * w).sum((-2, -1)), (db * db * w).sum((-2, -1)), (da * db * w).sum((-2, -1))
    cs = (2 * cov + C2) / (var_a + var_b + C2)
    return (2 * mu_a * mu_b + C1) / (mu_a**2 + mu_b**2 + C1) * cs, cs


def pool(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    return x[:h, :w].reshape(h // 2, 2, w // 2, 2).mean((1, 3))


def reference_ms_ssim(a: np.ndarray, b: np.ndarray, scales: int) -> float:
    weights = np.array(WEIGHTS[:scales]) / sum(WEIGHTS[:scales])
    value = 1.0
    for j in range(scales):
        full, cs = reference_maps(a, b)
        value *= max((full if j == scales - 1 else cs).mean(), 0) ** weights[j]
        a, b = pool(a), pool(b)
    return value


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((3, 2, 40, 37))
    x[:, :, 10:30, 5:20] += 0.5  # structure, so that SSIM is not only noise
    x /= x.max()
    y = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1)
    y[2] = x[2]  # an exact copy
    return x, y


def test_psnr_has_its_closed_form():
    x = np.full((2, 3, 4, 4), 0.5)
    y = x + np.array([0.1, 0.01])[:, None, None, None]
    np.testing.assert_allclose(psnr(y, x), [20.0, 40.0])
    assert psnr(x, x)[0] == np.inf
    np.testing.assert_allclose(psnr(y * 255, x * 255, data_range=255), [20.0, 40.0])


def test_ssim_matches_the_window_by_window_definition(pair):
    x, y = pair
    expected = [np.mean([reference_maps(x[n, c], y[n, c])[0].mean() for c in range(2)]) for n in range(3)]
    np.testing.assert_allclose(ssim(x, y), expected, rtol=1e-10)
    assert ssim(x, y)[2] == pytest.approx(1.0)
    expected7 = np.mean([reference_maps(x[0, c], y[0, c], 7)[0].mean() for c in range(2)])
    assert ssim(x[:1], y[:1], window=7)[0] == pytest.approx(expected7, rel=1e-10)


def test_ssim_of_constant_images_is_the_luminance_term():
    a, b = 0.2, 0.7
    value = ssim(np.full((1, 1, 16, 16), a), np.full((1, 1, 16, 16), b))[0]
    assert value == pytest.approx((2 * a * b + C1) / (a * a + b * b + C1))


def test_ms_ssim_matches_the_reference_and_uses_the_scales_that_fit(pair):
    x, y = pair
    assert ms_ssim_scales(40, 37) == 2 and ms_ssim_scales(176, 176) == 5 and ms_ssim_scales(175, 300) == 4
    assert ms_ssim_scales(64, 64) == 3 and ms_ssim_scales(8, 8, window=7) == 1
    expected = [np.mean([reference_ms_ssim(x[n, c], y[n, c], 2) for c in range(2)]) for n in range(3)]
    np.testing.assert_allclose(ms_ssim(x, y), expected, rtol=1e-10)
    one = [np.mean([reference_ms_ssim(x[n, c], y[n, c], 1) for c in range(2)]) for n in range(3)]
    np.testing.assert_allclose(ms_ssim(x, y, scales=1), one, rtol=1e-10)
    np.testing.assert_allclose(ms_ssim(x, y, scales=1), ssim(x, y), rtol=1e-10)


def test_ms_ssim_with_all_five_scales():
    rng = np.random.default_rng(1)
    x = rng.random((1, 1, 180, 176))
    y = np.clip(x + 0.2 * rng.standard_normal(x.shape), 0, 1)
    assert ms_ssim(x, y)[0] == pytest.approx(reference_ms_ssim(x[0, 0], y[0, 0], 5), rel=1e-10)
    # constant images: every contrast-structure term is 1, so MS-SSIM is the luminance term to its weight
    a, b = 0.3, 0.6
    value = ms_ssim(np.full((1, 1, 176, 176), a), np.full((1, 1, 176, 176), b))[0]
    assert value == pytest.approx(((2 * a * b + C1) / (a * a + b * b + C1)) ** (0.1333 / sum(WEIGHTS)))


@pytest.mark.parametrize("call, message", [
    (lambda: psnr(np.zeros((2, 1, 4, 4)), np.zeros((2, 1, 4, 5))), "must have the same shape"),
    (lambda: ssim(np.zeros((1, 1, 8, 8)), np.zeros((1, 1, 8, 8))), "does not fit images of 8x8: give window <= 7"),
    (lambda: ssim(np.zeros((1, 1, 12, 12)), np.zeros((1, 1, 12, 12)), window=4), "positive odd int"),
    (lambda: ms_ssim(np.zeros((1, 1, 40, 40)), np.zeros((1, 1, 40, 40)), scales=3), "scales must be 1..2"),
    (lambda: psnr(np.full((1, 4, 4), np.nan), np.zeros((1, 4, 4))), "NaN or infinite"),
    (lambda: psnr(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), data_range=0), "data_range must be positive"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(MetricInputError, match=message):
        call()
