"""The sliced-Wasserstein autoencoder's distance and loss (Kolouri et al., 2019), against closed forms."""
from __future__ import annotations

import pytest
import torch

import vaezoo
from vaezoo.components.objectives.swae import sliced_wasserstein
from vaezoo.errors import BadOverrideError


def normal_quantiles(n: int) -> torch.Tensor:
    return torch.distributions.Normal(0.0, 1.0).icdf((torch.arange(n, dtype=torch.float64) + 0.5) / n)


def test_in_one_dimension_it_is_the_wasserstein_distance_of_the_two_samples():
    # N(0, 1) and N(3, 2^2) at their quantiles: W_2^2 = (3 - 0)^2 + (2 - 1)^2 = 10 for the continuous laws, and
    # for the samples the mean of (sorted differences)^2, whichever the two directions (+1 or -1) drawn
    q = normal_quantiles(400)
    a, b = q[torch.randperm(400)].unsqueeze(1), (3 + 2 * q).unsqueeze(1)
    exact = ((q - (3 + 2 * q)) ** 2).mean()
    assert float(exact) == pytest.approx(10.0, rel=0.01)
    torch.testing.assert_close(sliced_wasserstein(a, b, projections=5), exact)
    torch.testing.assert_close(sliced_wasserstein(a, b, projections=5, power=1.0), (q - (3 + 2 * q)).abs().mean())


def test_a_shifted_cloud_is_at_the_shift_squared_over_the_dimension():
    # b = a + v: every projection of b is that of a shifted by theta.v, so SW_2^2 = E[(theta.v)^2] = |v|^2 / D
    torch.manual_seed(0)
    a = torch.randn(64, 4, dtype=torch.float64)
    v = torch.tensor([2.0, -1.0, 0.5, 3.0], dtype=torch.float64)
    assert float(sliced_wasserstein(a, a + v, projections=20000)) == pytest.approx(float(v @ v) / 4, rel=0.03)
    assert float(sliced_wasserstein(a, a[torch.randperm(64)], projections=10)) == pytest.approx(0.0, abs=1e-12)


def test_the_loss_is_reconstruction_plus_the_weighted_distance_to_prior_draws():
    model = vaezoo.create_model("swae-conv", input_shape=(1, 8, 8), latent_dim=3, **{
        "encoder.channels": [4], "encoder.hidden": 8, "decoder.channels": [4], "decoder.hidden": 8,
        "objective.weight": 5.0, "objective.projections": 7})
    x = torch.rand(6, 1, 8, 8)
    torch.manual_seed(2)
    out = model(x)
    z = model.encode(x)[0]  # the deterministic posterior's code is its mean
    torch.manual_seed(2)
    prior = torch.randn(6, 3)
    torch.testing.assert_close(out.z, z)
    distance = sliced_wasserstein(z, prior, 7)
    torch.testing.assert_close(out.terms["sliced_wasserstein"], distance)
    torch.testing.assert_close(out.loss, -out.recon.mean() + 5.0 * distance)


def test_bad_options_are_refused_at_build():
    for key, value, said in (("projections", 0, "projections must be a positive int"),
                             ("power", 0.5, "power must be a number of at least 1"),
                             ("weight", -1.0, "weight must be a non-negative number")):
        with pytest.raises(BadOverrideError, match=said):
            vaezoo.create_model("swae-conv", input_shape=(1, 8, 8), **{f"objective.{key}": value})
