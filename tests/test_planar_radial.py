"""Planar and radial flow posteriors (Rezende and Mohamed, 2015): each layer's log-determinant against autograd's
Jacobian, the invertibility constraints for any raw parameters, and log q(z|x) as the density of the draws."""
from __future__ import annotations

import pytest
import torch

import vaezoo
from vaezoo.components.posteriors.planar_radial import (
    PlanarPosterior, RadialPosterior, planar_step, planar_u_hat, radial_alpha_beta, radial_step,
)
from vaezoo.components.priors.gaussian import StandardNormal

POSTERIORS = {"planar": PlanarPosterior, "radial": RadialPosterior}


def raw_parameters(posterior, scale: float, generator: torch.Generator) -> torch.Tensor:
    return scale * torch.randn(1, posterior.layers * posterior.layer_params(), generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("name", POSTERIORS)
@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_the_flows_log_det_is_that_of_autograds_jacobian(name, scale):
    generator = torch.Generator().manual_seed(1)
    posterior = POSTERIORS[name](3, layers=4)
    raw = raw_parameters(posterior, scale, generator)
    for _ in range(5):
        z0 = torch.randn(3, generator=generator, dtype=torch.float64)
        jacobian = torch.autograd.functional.jacobian(lambda z: posterior.flow(z, raw[0])[0], z0)
        _, log_det = posterior.flow(z0, raw[0])
        torch.testing.assert_close(log_det, torch.linalg.slogdet(jacobian)[1])
        assert torch.linalg.det(jacobian) > 0


def test_each_layer_alone_matches_its_jacobian_too():
    generator = torch.Generator().manual_seed(2)
    u, w, z, centre = (torch.randn(4, generator=generator, dtype=torch.float64) for _ in range(4))
    b, a, c = (torch.randn(1, generator=generator, dtype=torch.float64) for _ in range(3))
    for step, args in ((planar_step, (u, w, b)), (radial_step, (centre, a, c))):
        jacobian = torch.autograd.functional.jacobian(lambda v: step(v, *args)[0], z)
        torch.testing.assert_close(step(z, *args)[1], torch.linalg.slogdet(jacobian)[1])


def test_the_invertibility_constraints_hold_for_arbitrary_raw_parameters():
    generator = torch.Generator().manual_seed(3)
    for scale in (0.1, 1.0, 10.0, 100.0):
        u, w = (scale * torch.randn(1000, 5, generator=generator, dtype=torch.float64) for _ in range(2))
        rounding = 1e-12 * (w.norm(dim=-1) * u.norm(dim=-1) + 1)  # w^T u-hat = -1 + softplus(w^T u), computed
        assert ((w * planar_u_hat(u, w)).sum(-1) >= -1.0 - rounding).all()  # as w^T u + (m - w^T u)
        alpha, beta = radial_alpha_beta(*(scale * torch.randn(2, 1000, generator=generator, dtype=torch.float64)))
        assert (alpha > 0).all() and (beta >= -alpha).all()
    # and so each layer's determinant is positive wherever z is, even with large raw parameters
    for name, cls in POSTERIORS.items():
        posterior = cls(5, layers=3)
        raw = raw_parameters(posterior, 20.0, generator)
        _, log_det = posterior.flow(10 * torch.randn(500, 5, generator=generator, dtype=torch.float64), raw)
        assert not torch.isnan(log_det).any(), name


@pytest.mark.parametrize("name", POSTERIORS)
def test_log_q_is_the_density_of_the_draws(name):
    """E_q[f(z) / q(z)] = 1 for a normalized density f (here the Gaussian with the draws' mean and covariance, so
    the ratio varies little): log q must be the draws' own log density (a wrong sign of the log-determinant, or a
    missing layer, moves the estimate far from 1)."""
    torch.manual_seed(4)
    posterior = POSTERIORS[name](2, layers=3)
    params = (torch.tensor([[0.3, -0.2]]), torch.tensor([[-0.5, 0.2]]), torch.randn(1, 3 * posterior.layer_params()))
    latent = posterior.draw(params, StandardNormal(2), samples=100_000)
    z = latent.z.double()[:, 0]
    f = torch.distributions.MultivariateNormal(z.mean(0), torch.cov(z.T))
    estimate = torch.exp(f.log_prob(z) - latent.log_q.double()[:, 0]).mean().item()
    assert estimate == pytest.approx(1.0, abs=0.02)
    torch.testing.assert_close(latent.kl, latent.log_q - StandardNormal(2).log_prob(latent.z))


@pytest.mark.parametrize("name", POSTERIORS)
def test_the_encoder_returns_the_flow_parameters_and_bad_options_are_refused(name):
    model = vaezoo.create_model(f"{name}-vae-mlp", input_shape=(1, 8, 8), latent_dim=3,
                                **{"encoder.hidden_dims": [8], "decoder.hidden_dims": [8], "posterior.layers": 2})
    mu, logvar, raw = model.encode(torch.rand(2, 1, 8, 8))
    assert raw.shape == (2, 2 * model.posterior.layer_params())
    with pytest.raises(Exception, match="layers must be a positive int, got 0"):
        vaezoo.create_model(f"{name}-vae-mlp", input_shape=(1, 8, 8), **{"posterior.layers": 0})
