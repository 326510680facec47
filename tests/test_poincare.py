"""The Poincaré-ball VAE's parts (Mathieu et al., 2019): the maps at the origin invert each other and stay in the
ball, and the wrapped normal's log density integrates to one over the ball's Riemannian volume."""
from __future__ import annotations

import pytest
import torch

import vaezoo
from vaezoo.components.poincare import exp0, log0, mobius_add, wrapped_normal_log_density
from vaezoo.components.posteriors.wrapped_normal import WrappedNormalPosterior
from vaezoo.components.priors.poincare import PoincareNormal
from vaezoo.errors import CombinationError


@pytest.mark.parametrize("c", [0.3, 1.0, 2.5])
def test_exp_and_log_at_the_origin_invert_each_other_and_stay_in_the_ball(c):
    generator = torch.Generator().manual_seed(0)
    u = torch.randn(1000, 5, generator=generator, dtype=torch.float64)
    u = u * (5 / c ** 0.5 / u.norm(dim=-1, keepdim=True)).clamp(max=1)  # within artanh(1 - BOUNDARY) / sqrt(c)
    torch.testing.assert_close(log0(exp0(u, c), c), u)
    far = 50 * u  # however far the tangent vector, the point is inside the ball of radius 1 / sqrt(c)
    assert (exp0(far, c).norm(dim=-1) < c ** -0.5).all()
    x, y = exp0(u[:500], c), exp0(u[500:], c)
    assert (mobius_add(x, y, c).norm(dim=-1) < c ** -0.5).all()
    torch.testing.assert_close(mobius_add(-x, mobius_add(x, y, c), c), y)  # left cancellation


@pytest.mark.parametrize("c", [0.5, 1.0])
def test_the_wrapped_normal_integrates_to_one_over_the_ball(c):
    """Sum q(z) lambda_z^2 dA over a grid of the 2-D ball, q read back from z as the posterior defines it."""
    mu, logvar = exp0(torch.tensor([0.4, -0.3], dtype=torch.float64), c), torch.tensor([-0.6, 0.1], dtype=torch.float64)
    radius, n = c ** -0.5, 1201
    axis = torch.linspace(-radius, radius, n, dtype=torch.float64)
    z = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    z = z[z.norm(dim=-1) < radius * (1 - 1e-9)]
    v = 2 * log0(mobius_add(-mu, z, c), c)  # the tangent vector at the origin that reaches z
    log_normal = (-0.5 * (v * v * torch.exp(-logvar) + logvar + torch.log(torch.tensor(2 * torch.pi)))).sum(-1)
    density = torch.exp(wrapped_normal_log_density(v, log_normal, c))
    volume = (2 / (1 - c * z.pow(2).sum(-1))) ** 2 * (axis[1] - axis[0]) ** 2
    assert (density * volume).sum().item() == pytest.approx(1.0, abs=0.01)


def test_draws_lie_in_the_ball_and_their_log_q_is_the_density_of_the_point():
    torch.manual_seed(1)
    posterior, prior = WrappedNormalPosterior(3, curvature=0.7), PoincareNormal(3, curvature=0.7)
    m, logvar = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64) - 1
    latent = posterior.draw((m, logvar), prior, samples=5)
    points = exp0(latent.z, 0.7)
    assert (points.norm(dim=-1) < 0.7 ** -0.5).all()
    v = 2 * log0(mobius_add(-exp0(m, 0.7), points, 0.7), 0.7)
    log_normal = (-0.5 * (v * v * torch.exp(-logvar) + logvar + torch.log(torch.tensor(2 * torch.pi)))).sum(-1)
    torch.testing.assert_close(latent.log_q, wrapped_normal_log_density(v, log_normal, 0.7))
    torch.testing.assert_close(latent.kl, latent.log_q - prior.log_prob(latent.z))
    # the prior is the wrapped normal at the origin, with scale 1: its log density of the same codes
    log_normal_0 = (-0.5 * (4 * latent.z ** 2 + torch.log(torch.tensor(2 * torch.pi)))).sum(-1)
    torch.testing.assert_close(prior.log_prob(latent.z), wrapped_normal_log_density(2 * latent.z, log_normal_0, 0.7))


def test_the_curvatures_must_agree_and_be_positive():
    with pytest.raises(CombinationError, match="curvature -1.0, the prior's -2.0; give both the same curvature"):
        vaezoo.create_model("pvae-mlp", input_shape=(1, 8, 8), **{"prior.curvature": 2.0})
    with pytest.raises(Exception, match="curvature must be a positive number"):
        vaezoo.create_model("pvae-mlp", input_shape=(1, 8, 8), **{"posterior.curvature": 0})
