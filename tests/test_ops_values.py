"""Forward values of the fused operator: KL against closed forms and torch.distributions, z and log_q
against the reference for the same eps, shapes with samples, non-contiguous inputs."""
from __future__ import annotations

import math

import pytest
import torch
from _ops_cases import (
    DTYPES,
    PRIORS,
    SHAPES,
    fused_cpu,
    make_eps,
    make_inputs,
    tolerance,
)
from torch.distributions import Normal, kl_divergence

from vaezoo.ops import backends, reference_reparameterize, reparameterize

pytestmark = fused_cpu


def kl_oracle(mu, logvar, prior_mu, prior_logvar) -> torch.Tensor:
    """KL per example from torch.distributions, in float64."""
    m, lv = mu.double(), logvar.double()
    if prior_mu is None:
        p = Normal(torch.zeros_like(m), torch.ones_like(m))
    else:
        p = Normal(prior_mu.double().expand_as(m), (0.5 * prior_logvar.double()).exp().expand_as(m))
    return kl_divergence(Normal(m, (0.5 * lv).exp()), p).flatten(1).sum(1)


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_matches_torch_distributions(dtype, shape, prior):
    mu, logvar, pm, plv = make_inputs(shape, dtype, prior)
    z, kl = reparameterize(mu, logvar, pm, plv, backend="fused")
    assert z.shape == mu.shape and z.dtype == dtype
    assert kl.shape == (shape[0],) and kl.dtype == dtype
    expected = kl_oracle(mu, logvar, pm, plv)
    d = math.prod(shape[1:])
    torch.testing.assert_close(kl.double(), expected, **tolerance(dtype, d), check_dtype=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kl_closed_forms(dtype):
    shape = (4, 6)
    mu = torch.zeros(shape, dtype=dtype)
    logvar = torch.zeros(shape, dtype=dtype)
    # q = p = N(0, I): KL is exactly zero
    assert torch.equal(reparameterize(mu, logvar, backend="fused")[1], torch.zeros(4, dtype=dtype))
    # N(mu, I) against N(0, I): |mu|^2 / 2
    mu = torch.full(shape, 2.0, dtype=dtype)
    torch.testing.assert_close(reparameterize(mu, logvar, backend="fused")[1], torch.full((4,), 12.0, dtype=dtype))
    # N(0, e^lv) against N(0, I): (e^lv - 1 - lv) / 2 per element
    logvar = torch.full(shape, math.log(4.0), dtype=dtype)
    expected = 6 * 0.5 * (4.0 - 1.0 - math.log(4.0))
    torch.testing.assert_close(reparameterize(mu * 0, logvar, backend="fused")[1], torch.full((4,), expected, dtype=dtype))
    # against a prior equal to q: zero
    kl = reparameterize(mu, logvar, mu.clone(), logvar.clone(), backend="fused")[1]
    torch.testing.assert_close(kl, torch.zeros(4, dtype=dtype))


@pytest.mark.parametrize("samples", [None, 1, 3])
@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (3, 2, 4, 4)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_same_eps_same_outputs_as_reference(dtype, shape, prior, samples):
    mu, logvar, pm, plv = make_inputs(shape, dtype, prior)
    eps = make_eps(shape, dtype, samples)
    z, kl, lq = reparameterize(mu, logvar, pm, plv, eps=eps, samples=samples, log_q=True, backend="fused")
    rz, rkl, rlq = reference_reparameterize(mu, logvar, pm, plv, eps, samples)
    d = math.prod(shape[1:])
    torch.testing.assert_close(z, rz, **tolerance(dtype))
    torch.testing.assert_close(kl, rkl, **tolerance(dtype, d))
    torch.testing.assert_close(lq, rlq, **tolerance(dtype, d))
    batch = (shape[0],) if samples is None else (samples, shape[0])
    assert lq.shape == batch and z.shape == eps.shape


def test_log_q_is_the_gaussian_log_density():
    mu, logvar, _, _ = make_inputs((6, 5), torch.float64)
    z, _, lq = reparameterize(mu, logvar, samples=4, log_q=True, backend="fused")
    expected = Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1)
    torch.testing.assert_close(lq, expected)


def test_samples_broadcast_mu_without_copies():
    mu, logvar, _, _ = make_inputs((3, 4), torch.float64)
    eps = make_eps((3, 4), torch.float64, samples=5)
    z, kl = reparameterize(mu, logvar, eps=eps, samples=5, backend="fused")
    torch.testing.assert_close(z, mu + (0.5 * logvar).exp() * eps)
    assert kl.shape == (3,)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_non_contiguous_inputs(dtype):
    base_mu, base_lv, pm, plv = make_inputs((8, 12), dtype, "shared")
    mu, logvar = base_mu.t(), base_lv.t()  # [12, 8], transposed views
    pm, plv = make_inputs((12, 8), dtype, "shared", seed=3)[2:]
    eps = make_eps((8, 12), dtype).t()
    assert not mu.is_contiguous() and not eps.is_contiguous()
    out = reparameterize(mu, logvar, pm, plv, eps=eps, log_q=True, backend="fused")
    ref = reference_reparameterize(mu.contiguous(), logvar.contiguous(), pm, plv, eps.contiguous(), None)
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b, **tolerance(dtype, 8))
    # a spatial latent sliced along channels
    x = make_inputs((2, 6, 3, 3), dtype)[0][:, ::2]
    z, kl = reparameterize(x, x, eps=torch.zeros_like(x), backend="fused")
    torch.testing.assert_close(z, x)
    torch.testing.assert_close(kl.double(), kl_oracle(x, x, None, None), **tolerance(dtype, 27))


@pytest.mark.parametrize("prior", [None, "shared"])
def test_spatial_latents_in_channels_last_memory(prior):
    """B x C x H x W latents as a convolution leaves them (channels_last: not contiguous): z, KL summed over
    C x H x W, log q and the gradients equal the reference's, and a drawn z does not depend on the layout."""
    shape = (3, 4, 5, 6)
    inputs = [t if t is None else t.to(memory_format=torch.channels_last) if t.dim() == 4 else t
              for t in make_inputs(shape, torch.float64, prior)]
    for t in inputs:
        if t is not None:
            t.requires_grad_()
    mu, logvar = inputs[:2]
    assert not mu.is_contiguous() and mu.is_contiguous(memory_format=torch.channels_last)
    eps = make_eps(shape, torch.float64).to(memory_format=torch.channels_last)
    out = reparameterize(*inputs, eps=eps, log_q=True, backend="fused")
    ref = reference_reparameterize(*inputs, eps, None)
    wanted = [t for t in inputs if t is not None]
    cotangents = [torch.randn_like(o) for o in out]
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b)
    for a, b in zip(torch.autograd.grad(out, wanted, cotangents), torch.autograd.grad(ref, wanted, cotangents)):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(out[1], kl_oracle(*inputs))
    torch.manual_seed(4)
    drawn = reparameterize(*inputs, backend="fused")[0]
    torch.manual_seed(4)
    plain = [t if t is None else t.detach().contiguous() for t in inputs]
    assert torch.equal(drawn, reparameterize(*plain, backend="fused")[0])


def test_extreme_logvar_follows_exp():
    mu = torch.zeros(1, 4)
    logvar = torch.tensor([[-200.0, 200.0, float("nan"), 0.0]])
    z, _ = reparameterize(mu, logvar, eps=torch.ones(1, 4), backend="fused")
    rz, _, _ = reference_reparameterize(mu, logvar, None, None, torch.ones(1, 4), None)
    torch.testing.assert_close(z, rz, equal_nan=True)


@pytest.mark.parametrize("logvar_value", [-15.0, -30.0, -100.0, 177.0, -177.0, 300.0])
@pytest.mark.parametrize("samples", [None, 3])
def test_reference_log_q_is_exact_at_extreme_logvar(logvar_value, samples):
    """log q from eps, not from (z - mu) / std: exact where std under- or overflows float32."""
    mu = make_inputs((4, 6), torch.float32)[0]
    logvar = torch.full_like(mu, logvar_value)
    eps = make_eps((4, 6), torch.float32, samples=samples)
    _, _, lq = reference_reparameterize(mu, logvar, None, None, eps, samples)
    exact = (-0.5 * (eps.double() ** 2 + logvar_value + math.log(2 * math.pi))).sum(-1)
    assert torch.isfinite(lq).all()
    torch.testing.assert_close(lq.double(), exact, rtol=1e-6, atol=0)
    if "fused" in backends()["cpu"]:
        _, _, fused = reparameterize(mu, logvar, eps=eps, samples=samples, log_q=True, backend="fused")
        torch.testing.assert_close(lq, fused, rtol=1e-6, atol=0)
