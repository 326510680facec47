"""The IAF posterior against a brute-force change of variables: log q(z_T|x) = log N(z_0) - log|det dz_T/dz_0|,
with the Jacobian from torch.autograd.functional.jacobian; MADE's outputs depend only on earlier inputs."""
from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from vaezoo import ops
from vaezoo.components.autoregressive import MADE
from vaezoo.components.posteriors.iaf import IAFPosterior
from vaezoo.components.priors.gaussian import StandardNormal


def randomized(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Weights far from their initialization, so that every step changes z visibly."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.7)
    return module.double()


@pytest.mark.parametrize("dim,steps", [(1, 1), (2, 2), (5, 3), (8, 2)])
def test_log_q_matches_the_change_of_variables_by_autograd(dim, steps):
    post = randomized(IAFPosterior(dim, steps=steps, hidden_dims=[12, 12], context=3), seed=dim)
    torch.manual_seed(10)
    mu, logvar, h = torch.randn(1, dim).double(), torch.randn(1, dim).double(), torch.randn(1, 3).double()
    torch.manual_seed(11)
    latent = post.draw((mu, logvar, h), StandardNormal(dim).double())
    torch.manual_seed(11)
    z0, _ = ops.reparameterize(mu, logvar)
    flow = lambda z: post.flow(z.unsqueeze(0), h)[0].squeeze(0)
    torch.testing.assert_close(latent.z[0], flow(z0[0]))  # the same z_0 was drawn
    assert (latent.z[0] - z0[0]).abs().max() > 1e-2  # and the flow moved it
    log_det = torch.linalg.slogdet(jacobian(flow, z0[0]))[1]
    var = logvar.exp()
    log_n = (-0.5 * ((z0 - mu) ** 2 / var + logvar + math.log(2 * math.pi))).sum()
    torch.testing.assert_close(latent.log_q[0], log_n - log_det)
    torch.testing.assert_close(latent.kl, latent.log_q - StandardNormal(dim).double().log_prob(latent.z))


def test_made_output_d_depends_only_on_inputs_before_d():
    made = randomized(MADE(6, 2, [10, 10], outputs=2), seed=3)
    h = torch.randn(2).double()
    z = torch.randn(6).double()
    for output in range(2):
        jac = jacobian(lambda v: made(v, h)[output], z)
        assert torch.equal(jac.triu(), torch.zeros_like(jac))  # strictly lower triangular
        assert jac.tril(-1).abs().sum() > 0


def test_several_draws_broadcast_the_context_and_mean_is_the_flow_of_mu():
    post = randomized(IAFPosterior(4, steps=2, hidden_dims=[8], context=2), seed=4)
    mu, logvar, h = torch.randn(3, 4).double(), torch.zeros(3, 4).double(), torch.randn(3, 2).double()
    latent = post.draw((mu, logvar, h), StandardNormal(4).double(), samples=5)
    assert latent.z.shape == (5, 3, 4) and latent.log_q.shape == latent.kl.shape == (5, 3)
    torch.testing.assert_close(post.mean((mu, logvar, h), None), post.flow(mu, h)[0])
