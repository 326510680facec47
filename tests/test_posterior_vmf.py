"""The von Mises-Fisher posterior against independent computations: log I_v against scipy, the KL against
numerical integration over the angle to the mean direction, the sampler's moments against the closed form
A_d(kappa) = I_{d/2}(kappa) / I_{d/2-1}(kappa) and against quadrature."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special

import vaezoo
from vaezoo.components.bessel import log_bessel_iv
from vaezoo.components.posteriors.vmf import (
    VonMisesFisherPosterior,
    householder,
    vmf_kl_uniform,
)
from vaezoo.components.priors.sphere import UniformSphere
from vaezoo.errors import CombinationError


@pytest.mark.parametrize("v", [0.0, 0.5, 1.0, 4.0, 15.0, 31.0])
def test_log_bessel_matches_scipy_from_tiny_to_huge_kappa(v):
    kappa = np.array([1e-3, 0.1, 1.0, 7.0, 59.0, 61.0, 300.0, 1999.0, 2001.0, 5e4])
    got = log_bessel_iv(v, torch.tensor(kappa, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, np.log(special.ive(v, kappa)) + kappa, rtol=1e-10, atol=1e-13)


def test_log_bessel_gradient_is_the_bessel_ratio_plus_v_over_kappa():
    kappa = torch.tensor([0.5, 3.0, 70.0, 900.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(log_bessel_iv(2.5, kappa).sum(), kappa)
    k = kappa.detach().numpy()
    np.testing.assert_allclose(grad.numpy(), special.ive(3.5, k) / special.ive(2.5, k) + 2.5 / k, rtol=1e-9)


def angle_integrals(kappa: float, d: int) -> tuple[float, float, float]:
    """log Z, E[w] and E[w^2] of exp(kappa w) on S^{d-1}, w = cos(angle to mu), by quadrature over the angle."""
    weight = lambda t, p: math.cos(t) ** p * math.exp(kappa * (math.cos(t) - 1.0)) * math.sin(t) ** (d - 2)
    mass, m1, m2 = (integrate.quad(weight, 0.0, math.pi, args=(p,), epsabs=0, epsrel=1e-12, limit=200)[0] for p in (0, 1, 2))
    log_area_below = math.log(2.0) + 0.5 * (d - 1) * math.log(math.pi) - math.lgamma(0.5 * (d - 1))  # |S^{d-2}|
    return kappa + math.log(mass) + log_area_below, m1 / mass, m2 / mass


@pytest.mark.parametrize("d", [2, 3, 5, 10, 32])
@pytest.mark.parametrize("kappa", [0.3, 1.0, 5.0, 40.0, 150.0])
def test_kl_to_uniform_matches_numerical_integration(d, kappa):
    log_z, mean_w, _ = angle_integrals(kappa, d)
    log_area = math.log(2.0) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)  # |S^{d-1}|
    expected = kappa * mean_w - log_z + log_area  # E_q[log q] - log(1 / |S^{d-1}|)
    got = vmf_kl_uniform(torch.tensor([kappa], dtype=torch.float64), d).item()
    assert got == pytest.approx(expected, rel=1e-8, abs=1e-10)


def test_householder_maps_e1_to_mu_and_preserves_norms():
    torch.manual_seed(0)
    mu = torch.nn.functional.normalize(torch.randn(5, 6, dtype=torch.float64), dim=-1)
    e1 = torch.zeros(5, 6, dtype=torch.float64).index_fill_(1, torch.tensor([0]), 1.0)
    torch.testing.assert_close(householder(mu, e1), mu)
    x = torch.randn(5, 6, dtype=torch.float64)
    torch.testing.assert_close(householder(mu, x).norm(dim=-1), x.norm(dim=-1))


@pytest.mark.parametrize("d,kappa", [(3, 2.0), (5, 20.0), (16, 5.0), (16, 300.0), (64, 50.0)])
def test_sampler_moments_match_the_closed_form_and_quadrature(d, kappa):
    torch.manual_seed(1)
    n = 20000
    post = VonMisesFisherPosterior(d, min_kappa=0.0)
    mu = torch.nn.functional.normalize(torch.randn(d, dtype=torch.float64), dim=0)
    raw = torch.tensor([math.log(math.expm1(kappa))], dtype=torch.float64)  # softplus^-1
    latent = post.draw((mu.expand(n, d), raw.expand(n, 1)), UniformSphere(d).double())
    z = latent.z
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(n, dtype=torch.float64))
    w = z @ mu
    resultant = z.mean(0)
    a_d = special.ive(d / 2, kappa) / special.ive(d / 2 - 1, kappa)
    _, mean_w, mean_w2 = angle_integrals(kappa, d)
    assert mean_w == pytest.approx(a_d, rel=1e-7)  # the two independent references agree
    se = w.std().item() / math.sqrt(n)
    assert abs(w.mean().item() - a_d) < 4.5 * se
    assert abs(resultant.norm().item() - a_d) < 4.5 * se + 3 * math.sqrt(d / n) * math.sqrt(1 - mean_w2) / math.sqrt(d)
    assert abs((w * w).mean().item() - mean_w2) < 4.5 * (w * w).std().item() / math.sqrt(n)
    cos = torch.dot(resultant / resultant.norm(), mu).item()
    assert cos > 1 - 20 * (1 - mean_w2) / (n * a_d**2) - 1e-4
    # the tangent part is isotropic around mu: its mean vanishes
    tangent = z - w.unsqueeze(-1) * mu
    assert tangent.mean(0).norm().item() < 5 * math.sqrt((1 - mean_w2) / n)


def test_log_q_integrates_to_one_on_the_circle():
    post = VonMisesFisherPosterior(2)
    theta = torch.linspace(0, 2 * math.pi, 20001, dtype=torch.float64)[:-1]
    z = torch.stack([theta.cos(), theta.sin()], dim=-1)
    mu = torch.tensor([0.6, 0.8], dtype=torch.float64)
    density = post.log_prob(z, mu, torch.tensor(7.0, dtype=torch.float64)).exp()
    assert (density.sum() * 2 * math.pi / 20000).item() == pytest.approx(1.0, rel=1e-10)


def test_kl_and_log_q_agree_in_expectation_and_gradients_reach_direction_and_concentration():
    torch.manual_seed(2)
    post, prior = VonMisesFisherPosterior(6), UniformSphere(6)
    direction = torch.randn(3, 6, requires_grad=True)
    raw = torch.tensor([[0.5], [2.0], [4.0]], requires_grad=True)
    latent = post.draw((direction, raw), prior, samples=4000)
    assert latent.z.shape == (4000, 3, 6) and latent.log_q.shape == (4000, 3) and latent.kl.shape == (3,)
    mc = (latent.log_q - prior.log_prob(latent.z)).mean(0)
    torch.testing.assert_close(mc, latent.kl, atol=0.05, rtol=0.02)
    (latent.z[..., 0].mean() + latent.kl.sum()).backward()
    assert direction.grad.abs().sum() > 0 and raw.grad.abs().sum() > 0


def test_vmf_needs_the_sphere_prior_and_the_sphere_prior_needs_vmf():
    with pytest.raises(CombinationError, match="posterior 'vaezoo:vmf' cannot be used with prior 'vaezoo:standard-normal'"):
        vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=4, posterior="vmf")
    with pytest.raises(CombinationError, match="posterior 'vaezoo:gaussian' cannot be used with prior 'vaezoo:uniform-sphere'"):
        vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=4, prior="uniform-sphere")
