"""The CUDA kernels against the reference, generator semantics on the GPU and CUDA graph capture."""
from __future__ import annotations

import pytest
import torch
from _ops_cases import (
    DTYPES,
    PRIORS,
    assert_compiled_step_matches_eager,
    make_eps,
    make_inputs,
    partial_use_grads,
    tolerance,
)

from vaezoo.ops import backends, reference_reparameterize, reparameterize

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture(autouse=True)
def fused_cuda():
    if "fused" not in backends().get("cuda", []):
        pytest.fail("vaezoo._C was built without its CUDA kernels")


def cotangents(outputs, seed=5):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(o.shape, generator=g, dtype=torch.float64).to(o) for o in outputs]


@pytest.mark.parametrize("samples", [None, 2])
@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("shape", [(0, 3), (1, 1), (7, 5), (33, 4096), (4, 3, 8, 8), (3, 1030)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_outputs_and_grads_equal_reference(dtype, shape, prior, samples):
    inputs = make_inputs(shape, dtype, prior, device="cuda", requires_grad=True)
    eps = make_eps(shape, dtype, samples, device="cuda")
    out = reparameterize(*inputs, eps=eps, samples=samples, log_q=True, backend="fused")
    ref = reference_reparameterize(*inputs, eps, samples)
    d = max(1, eps[0].numel() // max(shape[0], 1)) if shape[0] else 1
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b, **tolerance(dtype, d))
    wanted = [t for t in inputs if t is not None]
    cot = cotangents(out)
    for a, b in zip(torch.autograd.grad(out, wanted, cot), torch.autograd.grad(ref, wanted, cot)):
        torch.testing.assert_close(a, b, **tolerance(dtype, shape[0] * (samples or 1)))


def test_backward_regenerates_the_drawn_eps():
    inputs = make_inputs((64, 1000), torch.float64, "shared", device="cuda", requires_grad=True)
    out = reparameterize(*inputs, samples=3, log_q=True, backend="fused")
    eps = ((out[0] - inputs[0]) / (0.5 * inputs[1]).exp()).detach()
    ref = reference_reparameterize(*inputs, eps, 3)
    cot = cotangents(out)
    for a, b in zip(torch.autograd.grad(out, inputs, cot), torch.autograd.grad(ref, inputs, cot)):
        torch.testing.assert_close(a, b)


def test_normals_statistics_and_seeding():
    zeros = torch.zeros(1024, 1024, device="cuda")
    torch.manual_seed(3)
    a = reparameterize(zeros, zeros, backend="fused")[0]
    b = reparameterize(zeros, zeros, backend="fused")[0]
    torch.manual_seed(3)
    assert torch.equal(reparameterize(zeros, zeros, backend="fused")[0], a)
    assert not torch.equal(a, b)
    assert abs(a.mean().item()) < 5e-3 and abs(a.var().item() - 1) < 1e-2
    assert abs(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()) < 5e-3


def test_cuda_graph_capture_replays_fresh_draws_and_backward():
    mu = torch.zeros(256, 512, device="cuda", requires_grad=True)
    logvar = torch.zeros(256, 512, device="cuda", requires_grad=True)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):  # warm up outside the graph
            z, kl = reparameterize(mu, logvar, backend="fused")
            (z.sum() + kl.sum()).backward()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    mu.grad = logvar.grad = None
    with torch.cuda.graph(graph):
        z, kl = reparameterize(mu, logvar, backend="fused")
        (z * z).sum().backward()
    draws, grads = [], []
    for _ in range(2):
        graph.replay()
        torch.cuda.synchronize()
        draws.append(z.clone())
        grads.append(logvar.grad.clone())
    assert not torch.equal(draws[0], draws[1])  # each replay draws anew
    for eps, g in zip(draws, grads):  # d/dlogvar of sum(z^2) = z * eps with eps regenerated in backward
        torch.testing.assert_close(g, eps * eps)


def cuda_kernels(fn) -> list[str]:
    """Names of the CUDA kernels that fn() launches."""
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]


@pytest.mark.parametrize("prior", [None, "full"])
def test_one_kernel_launch_per_direction(prior):
    inputs = make_inputs((512, 256), torch.float32, prior, device="cuda", requires_grad=True)
    wanted = [t for t in inputs if t is not None]
    reparameterize(*inputs, backend="fused")  # warm up (module load, generator creation)
    forward = cuda_kernels(lambda: reparameterize(*inputs, backend="fused"))
    assert len(forward) == 1 and "forward_kernel" in forward[0], forward
    z, kl = reparameterize(*inputs, backend="fused")
    grad_z, grad_kl = torch.randn_like(z), torch.randn_like(kl)
    backward = cuda_kernels(lambda: torch.autograd.grad((z, kl), wanted, (grad_z, grad_kl), retain_graph=True))
    assert len(backward) == 1 and "backward_kernel" in backward[0], backward


@pytest.mark.parametrize("used", [(0,), (1,), (2,), (0, 1)])
def test_grads_when_only_some_outputs_are_used(used):
    for a, b in zip(*partial_use_grads(used, "shared", device="cuda")):
        torch.testing.assert_close(a, b)


def test_rng_state_replays_the_draw():
    mu, logvar = make_inputs((300, 70), torch.float32, device="cuda")[:2]
    state = torch.cuda.get_rng_state()
    a = reparameterize(mu, logvar, backend="fused")[0]
    torch.cuda.set_rng_state(state)
    assert torch.equal(reparameterize(mu, logvar, backend="fused")[0], a)


@pytest.mark.parametrize("prior, samples", [(None, None), ("shared", 3)])
def test_opcheck_on_cuda(prior, samples):
    mu, logvar, pm, plv = make_inputs((4, 3, 2), torch.float32, prior, device="cuda", requires_grad=True)
    torch.library.opcheck(torch.ops.vaezoo.reparameterize_fwd.default, (mu, logvar, pm, plv, None, samples))


def test_compiled_training_step_matches_eager_on_cuda():
    assert_compiled_step_matches_eager("cuda")
