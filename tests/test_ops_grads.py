"""Gradients of the fused operator: equal to autograd through the reference for the same eps (also when
backward regenerates a drawn eps), and gradcheck in float64."""
from __future__ import annotations

import math

import pytest
import torch
from _ops_cases import (
    DTYPES,
    PRIORS,
    fused_cpu,
    make_eps,
    make_inputs,
    partial_use_grads,
    tolerance,
)

from vaezoo.ops import reference_reparameterize, reparameterize

pytestmark = fused_cpu


def grads(outputs, inputs, seed=5):
    g = torch.Generator().manual_seed(seed)
    cotangents = [torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype) for o in outputs]
    wanted = [t for t in inputs if t is not None]
    return torch.autograd.grad(outputs, wanted, cotangents)


@pytest.mark.parametrize("samples", [None, 3])
@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("shape", [(1, 1), (6, 9), (2, 3, 4, 4)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_grads_equal_reference_autograd(dtype, shape, prior, samples):
    inputs = make_inputs(shape, dtype, prior, requires_grad=True)
    eps = make_eps(shape, dtype, samples)
    fused = grads(reparameterize(*inputs, eps=eps, samples=samples, log_q=True, backend="fused"), inputs)
    ref = grads(reference_reparameterize(*inputs, eps, samples), inputs)
    terms = (samples or 1) * (shape[0] if prior and prior.startswith("shared") else 1)
    for name, a, b in zip(("mu", "logvar", "prior_mu", "prior_logvar"), fused, ref):
        assert a.shape == b.shape, name
        torch.testing.assert_close(a, b, **tolerance(dtype, terms), msg=lambda m: f"grad of {name}: {m}")


@pytest.mark.parametrize("prior", [None, "shared"])
def test_backward_regenerates_the_drawn_eps(prior):
    inputs = make_inputs((16, 40), torch.float64, prior, requires_grad=True)
    mu, logvar = inputs[:2]
    out = reparameterize(*inputs, samples=2, log_q=True, backend="fused")
    eps = ((out[0] - mu) / (0.5 * logvar).exp()).detach()  # the eps the forward drew
    fused = grads(out, inputs)
    ref = grads(reference_reparameterize(*inputs, eps, 2), inputs)
    for a, b in zip(fused, ref):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("used", [(0,), (1,), (2,), (0, 1), (1, 2)])
@pytest.mark.parametrize("prior", [None, "shared"])
def test_grads_when_only_some_outputs_are_used(used, prior):
    """Outputs that reach no loss get no gradient in backward (no zeros are made for them): still exact."""
    for a, b in zip(*partial_use_grads(used, prior)):
        torch.testing.assert_close(a, b)


def test_grad_wrt_explicit_eps():
    mu, logvar, _, _ = make_inputs((4, 5), torch.float64)
    eps = make_eps((4, 5), torch.float64, samples=2).requires_grad_()
    z, _, lq = reparameterize(mu, logvar, eps=eps, samples=2, log_q=True, backend="fused")
    rz, _, rlq = reference_reparameterize(mu, logvar, None, None, eps, 2)
    (g_fused,) = grads((z, lq), [eps])
    (g_ref,) = grads((rz, rlq), [eps])
    torch.testing.assert_close(g_fused, g_ref)


@pytest.mark.parametrize("prior", PRIORS)
def test_gradcheck_float64(prior):
    inputs = make_inputs((3, 4), torch.float64, prior, requires_grad=True)
    eps = make_eps((3, 4), torch.float64, samples=2)
    n = sum(t is not None for t in inputs)

    def f(*tensors):
        padded = list(tensors) + [None] * (4 - n)
        return reparameterize(*padded, eps=eps, samples=2, log_q=True, backend="fused")

    assert torch.autograd.gradcheck(f, [t for t in inputs if t is not None])


def test_gradcheck_with_drawn_eps_under_fixed_seed():
    inputs = make_inputs((2, 3), torch.float64, requires_grad=True)[:2]

    def f(mu, logvar):
        torch.manual_seed(7)  # the same eps for every evaluation
        return reparameterize(mu, logvar, log_q=True, backend="fused")

    assert torch.autograd.gradcheck(f, inputs)


def test_grads_of_a_large_row_sum():
    # long rows (several inner chunks) accumulate correctly
    inputs = make_inputs((2, 3000), torch.float32, "full", requires_grad=True)
    eps = make_eps((2, 3000), torch.float32)
    fused = grads(reparameterize(*inputs, eps=eps, log_q=True, backend="fused"), inputs)
    ref = grads(reference_reparameterize(*inputs, eps, None), inputs)
    for a, b in zip(fused, ref):
        torch.testing.assert_close(a, b, **tolerance(torch.float32, math.isqrt(3000)))
