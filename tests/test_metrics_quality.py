"""FID, KID and precision/recall on feature sets with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from vaezoo import metrics
from vaezoo.errors import MetricInputError


@pytest.fixture(scope="module")
def real() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(1500, 16))


def test_a_set_against_itself(real):
    assert metrics.fid(real, real) == pytest.approx(0.0, abs=1e-6)
    assert metrics.precision_recall(real, real) == (1.0, 1.0)
    assert abs(metrics.kid(real, real, subsets=10, subset_size=500)) < 0.05  # a shift of 0.5 gives about 1


def test_fid_of_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20000, 4))
    b = rng.normal(size=(20000, 4)) * 2.0 + 1.0  # mean shift 1 per dim, sd 2: 4 * 1 + 4 * (1 + 4 - 2 * 2) = 8
    assert metrics.fid(a, b) == pytest.approx(8.0, rel=0.03)


def test_a_shifted_set_scores_worse_and_worse(real):
    other = np.random.default_rng(2).normal(size=real.shape)  # the same distribution, other draws
    near, far = other + 0.5, other + 2.0
    fids = [metrics.fid(real, x) for x in (other, near, far)]
    kids = [metrics.kid(real, x, subsets=10, subset_size=500) for x in (other, near, far)]
    precisions = [metrics.precision_recall(real, x)[0] for x in (other, near, far)]
    assert fids[0] < 0.3 and fids[0] < fids[1] < fids[2]
    assert fids[2] == pytest.approx(16 * 4.0, rel=0.1)  # |shift|^2 dominates
    assert abs(kids[0]) < 0.05 and 0.5 < kids[1] < kids[2]
    assert precisions[0] > 0.6 and precisions[0] > precisions[1] > precisions[2]
    assert precisions[2] < 0.05


def test_precision_and_recall_tell_collapse_from_spread(real):
    collapsed = real[np.linalg.norm(real, axis=1) < 3.0][:200] * 0.3  # inside the real cloud, covering little
    precision, recall = metrics.precision_recall(real, collapsed)
    assert precision > 0.9 and recall < 0.3


def test_bad_features_are_named(real):
    with pytest.raises(MetricInputError, match="real features have 16 columns and fake features 8"):
        metrics.fid(real, real[:, :8])
    with pytest.raises(MetricInputError, match="fake features have 3 rows"):
        metrics.precision_recall(real, real[:3])
    with pytest.raises(MetricInputError, match="must be 2-D"):
        metrics.kid(real[:, 0], real)


def test_sharpness_of_a_checkerboard_and_a_flat_image():
    board = (np.indices((8, 8)).sum(0) % 2).astype(float)  # every interior Laplacian is 4 - 8v = +-4
    assert metrics.sharpness(board[None, None]) == pytest.approx(16.0)
    assert metrics.sharpness(np.full((3, 2, 6, 6), 0.7)) == 0.0


def test_sharpness_matches_a_convolution_and_falls_with_blur():
    torch = pytest.importorskip("torch")
    images = torch.rand(5, 3, 12, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    laplacian = torch.nn.functional.conv2d(images.flatten(0, 1)[:, None], kernel.view(1, 1, 3, 3))
    expected = laplacian.flatten(1).var(dim=1, unbiased=False).mean().item()
    assert metrics.sharpness(images.numpy()) == pytest.approx(expected, rel=1e-12)
    blurred = torch.nn.functional.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False)
    assert metrics.sharpness(blurred.numpy()) < 0.2 * metrics.sharpness(images.numpy())


def test_bad_images_are_named():
    with pytest.raises(MetricInputError, match=r"images must be \[N, C, H, W\].*got shape \(4, 2\)"):
        metrics.sharpness(np.zeros((4, 2)))
    with pytest.raises(MetricInputError, match="H, W >= 3"):
        metrics.sharpness(np.zeros((1, 1, 2, 9)))
    with pytest.raises(MetricInputError, match="NaN"):
        metrics.sharpness(np.full((1, 1, 4, 4), np.nan))
