"""Gradients of the fused operator: equal to autograd through the reference for the same eps (also when
backward regenerates a drawn eps), and gradcheck in float64."""
from __future__ import annotations

import contextlib
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

from vaezoo.ops import noise_shard, reference_reparameterize, reparameterize

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


@pytest.mark.parametrize("shard", [None, (1, 5)])
@pytest.mark.parametrize("samples", [None, 2])
@pytest.mark.parametrize("prior", [None, "full", "shared"])
def test_gradgradcheck_with_drawn_eps(prior, samples, shard):
    """create_graph=True through the fused operator: second-order gradients are exact (the backward kernel has
    an autograd of its own, from the reference's formulas at the regenerated eps, a noise shard's rows too)."""
    inputs = [t for t in make_inputs((2, 3), torch.float64, prior, requires_grad=True) if t is not None]

    def f(*tensors):
        torch.manual_seed(7)  # the same eps for every evaluation
        padded = list(tensors) + [None] * (4 - len(tensors))
        with noise_shard(*shard) if shard else contextlib.nullcontext():
            return reparameterize(*padded, samples=samples, log_q=True, backend="fused")

    assert torch.autograd.gradgradcheck(f, inputs)


def test_gradgradcheck_with_explicit_eps():
    mu, logvar, prior_mu, prior_logvar = make_inputs((2, 3), torch.float64, "full", requires_grad=True)
    eps = make_eps((2, 3), torch.float64, samples=2).requires_grad_()

    def f(*tensors):
        return reparameterize(*tensors[:4], eps=tensors[4], samples=2, log_q=True, backend="fused")

    assert torch.autograd.gradgradcheck(f, [mu, logvar, prior_mu, prior_logvar, eps])


def gradient_penalty_grad(backend: str, eps: torch.Tensor | None = None):
    """d/dw of |d(sum z^2 + sum kl)/dx|^2 with mu = x * w, logvar = sin(x) * w: a gradient penalty's shape."""
    w = torch.tensor([0.3, -0.7], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([[0.5, 1.0], [-1.0, 2.0], [0.2, -0.4]], dtype=torch.float64, requires_grad=True)
    mu, logvar = x * w, torch.sin(x) * w
    torch.manual_seed(3)
    if backend == "reference":
        z, kl, _ = reference_reparameterize(mu, logvar, None, None, eps, None)
    else:
        z, kl = reparameterize(mu, logvar, backend=backend)
    (gx,) = torch.autograd.grad((z**2).sum() + kl.sum(), x, create_graph=True)
    (gw,) = torch.autograd.grad((gx**2).sum(), w)
    return gw, ((z - mu) / (0.5 * logvar).exp()).detach()


def test_a_gradient_penalty_through_the_fused_path_equals_the_reference():
    fused, eps = gradient_penalty_grad("fused")
    reference, _ = gradient_penalty_grad("reference", eps)
    torch.testing.assert_close(fused, reference)


def test_third_order_gradients_equal_the_reference():
    """Under create_graph on the second-order call too, the fused path stays exact (torch.func all the way)."""
    inputs = make_inputs((2, 3), torch.float64, "shared", requires_grad=True)
    eps = make_eps((2, 3), torch.float64)

    def third(backend_outputs):
        z, kl, lq = backend_outputs
        (g,) = torch.autograd.grad((z**2).sum() + kl.sum() + lq.sum(), inputs[0], create_graph=True)
        (gg,) = torch.autograd.grad((g**3).sum(), inputs[1], create_graph=True)
        return torch.autograd.grad((gg**2).sum(), inputs)

    torch.manual_seed(2)
    fused = third(reparameterize(*inputs, log_q=True, backend="fused"))
    torch.manual_seed(2)
    drawn = reparameterize(*inputs, backend="fused")[0]
    eps = ((drawn - inputs[0]) / (0.5 * inputs[1]).exp()).detach()
    reference = third(reference_reparameterize(*inputs, eps, None))
    for a, b in zip(fused, reference):
        torch.testing.assert_close(a, b)


def test_the_graph_keeps_autograds_guarantees():
    """The C++ autograd node (csrc/autograd.cpp) frees what it saved after a backward, refuses a second one,
    and refuses a backward after an input it saved was changed in place."""
    mu, logvar, _, _ = make_inputs((3, 4), torch.float32)
    mu, logvar = mu.requires_grad_(), logvar.requires_grad_()
    z, kl = reparameterize(mu, logvar, backend="fused")
    (z.sum() + kl.sum()).backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        (z.sum() + kl.sum()).backward()
    a, b = mu.detach().clone().requires_grad_(), logvar.detach().clone()
    base = a * 1
    z, kl = reparameterize(base, b, backend="fused")
    b.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_forward_mode_ad_is_refused_not_dropped():
    """The fused kernels have no forward-mode derivative: a dual input raises, also under no_grad, where
    its tangent would otherwise be dropped silently."""
    import torch.autograd.forward_ad as fwAD

    mu, logvar, _, _ = make_inputs((2, 3), torch.float64)
    for context in (contextlib.nullcontext, torch.no_grad):
        with fwAD.dual_level(), context():
            dual = fwAD.make_dual(mu, torch.ones_like(mu))
            with pytest.raises(RuntimeError, match="no forward-mode AD"):
                reparameterize(dual, logvar, backend="fused")


@pytest.mark.parametrize(
    "shape, dtype",
    [((4, 6), torch.float32), ((3, 5), torch.float64), ((4, 6), torch.bfloat16), ((40, 1000), torch.float32)],
)
def test_a_recorded_call_draws_and_differentiates_as_an_unrecorded_one(shape, dtype):
    """On the CPU, a call that records a graph draws eps in the autograd layer and keeps it for backward (small
    float32 and float64 calls) or lets backward regenerate it (other dtypes, large calls): either way z, kl and
    log_q are bit for bit those of the same call without a graph, and the gradients those of the backward
    kernel regenerating eps from the generator state (samples and a noise_shard block included)."""
    mu, logvar, _, _ = make_inputs(shape, dtype)
    start, total = 1, shape[0] + 2
    with noise_shard(start, total):
        torch.manual_seed(3)
        plain = reparameterize(mu, logvar, samples=2, log_q=True, backend="fused")
        torch.manual_seed(3)
        inputs = (mu.clone().requires_grad_(), logvar.clone().requires_grad_())
        recorded = reparameterize(*inputs, samples=2, log_q=True, backend="fused")
    for a, b in zip(plain, recorded):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    g = torch.Generator().manual_seed(1)
    cotangents = [torch.randn(o.shape, generator=g, dtype=torch.float64).to(dtype) for o in recorded]
    got = torch.autograd.grad(recorded, inputs, cotangents)
    torch.manual_seed(3)
    rng = torch.ops.vaezoo.reparameterize_fwd(mu, logvar, None, None, None, 2, start, total)[3]
    want = torch.ops.vaezoo.reparameterize_bwd(*cotangents, mu, logvar, None, None, None, rng, start, total)[:2]
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
