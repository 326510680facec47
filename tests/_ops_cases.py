"""Shared cases for the tests of vaezoo.ops: shapes, dtypes, priors, tolerances and input builders."""
from __future__ import annotations

import pytest
import torch

from vaezoo.ops import backends, reference_reparameterize, reparameterize

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
SHAPES = [(0, 5), (1, 1), (1, 7), (8, 32), (3, 4, 5, 5), (64, 33)]
PRIORS = [None, "full", "shared", "shared1"]

# (rtol, atol per element) of outputs rounded to each dtype
TOL = {
    torch.float64: (1e-10, 1e-10),
    torch.float32: (2e-5, 2e-5),
    torch.float16: (2e-3, 2e-3),
    torch.bfloat16: (1.6e-2, 1.6e-2),
}

fused_cpu = pytest.mark.skipif("fused" not in backends()["cpu"], reason="vaezoo._C is not built")


def tolerance(dtype: torch.dtype, terms: int = 1) -> dict:
    """assert_close tolerances for a value in `dtype` that sums `terms` per-element terms."""
    rtol, atol = TOL[dtype]
    return {"rtol": rtol, "atol": atol * max(terms, 1) ** 0.5 * 4}


def make_inputs(shape, dtype, prior=None, device="cpu", seed=0, requires_grad=False):
    """(mu, logvar, prior_mu, prior_logvar) with logvar in a moderate range; prior: None|full|shared|shared1."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(shape, generator=g, dtype=torch.float64)
    logvar = torch.randn(shape, generator=g, dtype=torch.float64).clamp(-3, 3)
    tensors = [mu, logvar]
    if prior is not None:
        pshape = {"full": shape, "shared": shape[1:], "shared1": (1, *shape[1:])}[prior]
        tensors += [torch.randn(pshape, generator=g, dtype=torch.float64),
                    torch.randn(pshape, generator=g, dtype=torch.float64).clamp(-2, 2)]
    else:
        tensors += [None, None]
    return tuple(
        None if t is None else t.to(device=device, dtype=dtype).requires_grad_(requires_grad) for t in tensors
    )


def make_eps(shape, dtype, samples=None, device="cpu", seed=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    full = shape if samples is None else (samples, *shape)
    return torch.randn(full, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)


def partial_use_grads(used, prior=None, device="cpu"):
    """Gradients (fused, reference) wrt every input when only the outputs at indices `used` reach the loss."""
    inputs = make_inputs((9, 20), torch.float64, prior, device=device, requires_grad=True)
    eps = make_eps((9, 20), torch.float64, samples=2, device=device).requires_grad_()
    wanted = [t for t in (*inputs, eps) if t is not None]
    fused = reparameterize(*inputs, eps=eps, samples=2, log_q=True, backend="fused")
    ref = reference_reparameterize(*inputs, eps, 2)
    cotangents = [torch.randn_like(fused[i]) for i in used]

    def grads_of(outputs):
        picked = [outputs[i] for i in used]
        return torch.autograd.grad(picked, wanted, cotangents, allow_unused=True, materialize_grads=True)

    return grads_of(fused), grads_of(ref)


def assert_compiled_step_matches_eager(device="cpu"):
    """One VAE-like training step gives the same loss and parameter grads eagerly and under
    torch.compile(fullgraph=True)."""
    torch.manual_seed(0)
    encoder, decoder = torch.nn.Linear(8, 6).to(device), torch.nn.Linear(3, 8).to(device)
    params = [*encoder.parameters(), *decoder.parameters()]
    x = torch.randn(16, 8, device=device)

    def loss_fn(x: torch.Tensor) -> torch.Tensor:
        mu, logvar = encoder(x).chunk(2, dim=1)
        z, kl = reparameterize(mu, logvar)
        return ((decoder(z) - x) ** 2).sum(1).mean() + kl.mean()

    results = []
    for fn in (loss_fn, torch.compile(loss_fn, fullgraph=True)):  # backward: AOTAutograd's compiled graph
        for p in params:
            p.grad = None
        torch.manual_seed(1)
        loss = fn(x)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in params]))
    (loss_e, grads_e), (loss_c, grads_c) = results
    torch.testing.assert_close(loss_c, loss_e)
    for a, b in zip(grads_c, grads_e):
        torch.testing.assert_close(a, b)
