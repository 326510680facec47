"""The ms-ssim reconstruction term: the MS-SSIM metric's value with an L1 term, differentiable, and honest that it
is not a normalized likelihood."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import vaezoo
from vaezoo.components.likelihoods.ms_ssim import MSSSIMDistance
from vaezoo.errors import BadOverrideError
from vaezoo.metrics import image_quality


def test_the_term_is_the_metrics_ms_ssim_and_the_l1_distance_weighted():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64) * 0.9 + 0.05
    # reconstructions like x
    logits = torch.logit(x) + torch.randn(3, 1, 28, 28, dtype=torch.float64)
    term = MSSSIMDistance((1, 28, 28), alpha=0.7, weight=2.0)
    x_hat = torch.sigmoid(logits).numpy()
    metric = image_quality.ms_ssim(x_hat, x.numpy())  # the metric, as eval reports it: 11-pixel window, 2 scales
    l1 = np.abs(x_hat - x.numpy()).reshape(3, -1).mean(1)
    expected = -2.0 * (0.7 * (1 - metric) + 0.3 * l1)
    np.testing.assert_allclose(term.log_prob(logits, x).numpy(), expected, rtol=1e-10)
    # the default weight is the number of pixels: the L1 part is then the summed L1 distance
    only_l1 = MSSSIMDistance((1, 28, 28), alpha=0.0)
    np.testing.assert_allclose(only_l1.log_prob(logits, x).numpy(), -np.abs(x_hat - x.numpy()).reshape(3, -1).sum(1))


def test_a_perfect_reconstruction_scores_zero_and_worse_ones_less():
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64) * 0.9 + 0.05
    term = MSSSIMDistance((3, 16, 16))
    assert term.window == 11 and term.scales == 1
    perfect = term.log_prob(torch.logit(x), x)
    torch.testing.assert_close(perfect, torch.zeros(2, dtype=torch.float64), atol=1e-9, rtol=0)
    noisy = term.log_prob(torch.logit(x) + torch.randn_like(x), x)
    assert (noisy < -1).all()


def test_it_is_differentiable_with_finite_gradients():
    torch.manual_seed(1)
    x = torch.rand(2, 1, 12, 12, dtype=torch.float64)
    logits = torch.randn(2, 1, 12, 12, dtype=torch.float64, requires_grad=True)
    term = MSSSIMDistance((1, 12, 12), weight=1.0)
    assert torch.autograd.gradcheck(lambda p: term.log_prob(p, x), (logits,))
    # at a negative of the image, whose terms fall below 0 at both scales (clipped to 0, then raised to powers
    # under 1, whose slope is infinite at 0), the gradient is finite: the L1 part's alone
    x = torch.rand(1, 1, 28, 28, dtype=torch.float64) * 0.9 + 0.05
    negative = torch.logit(1 - x).requires_grad_(True)
    MSSSIMDistance((1, 28, 28)).log_prob(negative, x).sum().backward()
    assert torch.isfinite(negative.grad).all() and negative.grad.abs().sum() > 0


def test_it_needs_images_and_valid_options():
    with pytest.raises(BadOverrideError, match=r"ms-ssim likelihood needs an image shape \[C, H, W\], got \(64,\)"):
        vaezoo.create_model("vae-mlp", input_shape=(64,), likelihood="ms-ssim")
    with pytest.raises(BadOverrideError, match=r"alpha must be a number in \[0, 1\]"):
        vaezoo.create_model("vae-msssim-conv", input_shape=(1, 8, 8), **{"likelihood.alpha": 1.5})
    assert "not a bound on log p(x)" in vaezoo.get_model_spec("vae-msssim-conv").description
