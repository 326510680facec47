"""Every likelihood against torch.distributions or an independent computation, and bits per dimension."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import logistic
from held_out_sets import held
from torch.distributions import Bernoulli, Laplace, Normal

import vaezoo
from vaezoo.analysis.evaluate import bits_per_dim, elbo
from vaezoo.components.likelihoods import DiscretizedLogistic, Gaussian
from vaezoo.components.likelihoods import Laplace as LaplaceLikelihood

SHAPE = (2, 3, 4)


def test_bernoulli_equals_torch():
    model = vaezoo.create_model("vae-mlp", input_shape=SHAPE)
    logits, x = torch.randn(5, *SHAPE), torch.rand(5, *SHAPE).bernoulli()
    expected = Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(model.likelihood.log_prob(logits, x), expected)


@pytest.mark.parametrize("learn", [False, True])
@pytest.mark.parametrize(
    "make, distribution",
    [
        (lambda learn: Gaussian(SHAPE, sigma=0.2, learn_sigma=learn), Normal),
        (lambda learn: LaplaceLikelihood(SHAPE, scale=0.3, learn_scale=learn), Laplace),
    ],
    ids=["gaussian", "laplace"],
)
def test_location_scale_likelihoods_equal_torch_with_fixed_or_per_pixel_scale(make, distribution, learn):
    likelihood = make(learn)
    if learn:
        with torch.no_grad():
            likelihood.log_scale.normal_(-1, 0.3)
    loc, x = torch.rand(5, *SHAPE), torch.rand(5, *SHAPE)
    expected = distribution(loc, likelihood.log_scale.exp()).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(likelihood.log_prob(loc, x), expected)
    assert likelihood.log_scale.requires_grad == learn


def discretized_logistic_scipy(mean: np.ndarray, log_scale: np.ndarray, level: np.ndarray) -> np.ndarray:
    """The bin mass from scipy's logistic CDF (its survival function above the mean, where the CDF saturates),
    with the edge bins taking the tails."""
    scale = np.exp(log_scale)
    upper = np.where(level == 255, np.inf, (level + 0.5) / 255)
    lower = np.where(level == 0, -np.inf, (level - 0.5) / 255)
    below = logistic.cdf(upper, mean, scale) - logistic.cdf(lower, mean, scale)
    above = logistic.sf(lower, mean, scale) - logistic.sf(upper, mean, scale)
    return np.log(np.where(level / 255 < mean, below, above))


def test_discretized_logistic_equals_an_independent_computation():
    torch.manual_seed(0)
    likelihood = DiscretizedLogistic(SHAPE).double()
    assert likelihood.param_shape() == (4, 3, 4)
    params = torch.cat([torch.rand(5, 2, 3, 4), torch.empty(5, 2, 3, 4).uniform_(-5, -1)], dim=1).double()
    level = torch.randint(0, 256, (5, *SHAPE))
    level[0] = 0
    level[1] = 255
    x = level.double() / 255
    mean, log_scale = params[:, :2].numpy(), params[:, 2:].numpy()
    expected = discretized_logistic_scipy(mean, log_scale, level.numpy()).reshape(5, -1).sum(1)
    np.testing.assert_allclose(likelihood.log_prob(params, x).numpy(), expected, rtol=1e-9)
    torch.testing.assert_close(likelihood.mean(params), params[:, :2].clamp(0, 1))


@pytest.mark.parametrize("log_scale", [-6.0, -3.0, 0.0])
def test_discretized_logistic_masses_sum_to_one(log_scale):
    likelihood = DiscretizedLogistic((1,)).double()
    levels = torch.arange(256, dtype=torch.float64).view(256, 1) / 255
    params = torch.tensor([[0.37, log_scale]], dtype=torch.float64).expand(256, 2)
    total = likelihood.log_prob(params, levels).exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-9)


def test_bits_per_dim_and_elbo_reports_it_for_discrete_likelihoods():
    assert bits_per_dim(784 * math.log(2.0), (1, 28, 28)) == pytest.approx(1.0)
    assert bits_per_dim(100.0, (3, 32, 32)) == pytest.approx(100.0 / (3072 * math.log(2.0)))
    x = torch.rand(6, 1, 8, 8)
    logistic_model = vaezoo.create_model("vae-conv", input_shape=(1, 8, 8), likelihood="discretized-logistic")
    result = elbo(logistic_model, held(x))
    assert result["bits_per_dim"] == pytest.approx(-result["elbo"] / (64 * math.log(2.0)))
    gaussian_model = vaezoo.create_model("gaussian-vae-conv", input_shape=(1, 8, 8))
    assert "bits_per_dim" not in elbo(gaussian_model, held(x))
