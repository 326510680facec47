"""The fused path: vaezoo::reparameterize_fwd/_bwd from vaezoo._C, with their fake (meta) kernels, and the eager
entry vaezoo._C.reparameterize (argument checks and the operator call in one C++ function).

Autograd of reparameterize_fwd is registered in C++ (csrc/autograd.cpp, for the Autograd dispatch key), not with
torch.library.register_autograd: the Python autograd layer cost 10-20 us per direction, most of a call's time at
small sizes. Its backward calls reparameterize_bwd through the dispatcher and regenerates eps from the saved
generator state (small float32/float64 calls on plain CPU tensors instead keep the eps drawn and exp(logvar/2)
from the forward's pass, and their node calls the CPU kernels directly). The backward kernel's own autograd
(for create_graph=True) is in vaezoo.ops.second_order; a plain backward goes past it, straight to the kernel.
The fake kernels stay in Python (torch.library.register_fake),
where torch.compile and opcheck look for them.
"""
from __future__ import annotations

import importlib

import torch

from vaezoo.ops import second_order
from vaezoo.ops.backend import LOAD_ERROR


def _fake_forward(mu, logvar, prior_mu, prior_logvar, eps, samples, row_start=0, row_total=None):
    batch = mu.shape[:1]
    z_shape = mu.shape if samples is None else (samples, *mu.shape)
    log_q_shape = batch if samples is None else (samples, *batch)
    return mu.new_empty(z_shape), mu.new_empty(batch), mu.new_empty(log_q_shape), mu.new_empty(2, dtype=torch.int64)


def _fake_backward(
    grad_z, grad_kl, grad_log_q, mu, logvar, prior_mu, prior_logvar, eps, rng, row_start=0, row_total=None
):
    grad_mu, grad_logvar = mu.new_empty(mu.shape), mu.new_empty(mu.shape)
    if prior_mu is None:
        return grad_mu, grad_logvar, mu.new_empty(0), mu.new_empty(0)
    return grad_mu, grad_logvar, mu.new_empty(prior_mu.shape), mu.new_empty(prior_logvar.shape)


def _no_eager_entry(*args) -> None:
    """Stands in for vaezoo._C.reparameterize where the extension is not built: every call takes the general path."""
    return None


eager_entry = _no_eager_entry
if LOAD_ERROR is None:
    torch.library.register_fake("vaezoo::reparameterize_fwd")(_fake_forward)
    torch.library.register_fake("vaezoo::reparameterize_bwd")(_fake_backward)
    second_order.register()  # gradients of gradients (create_graph=True) through the backward kernel
    _forward_op = torch.ops.vaezoo.reparameterize_fwd.default
    # (mu, logvar, prior_mu, prior_logvar, eps, samples, log_q, backend, shard) -> (z, kl[, log_q]), or None
    # for a call it does not serve (csrc/python_entry.cpp)
    eager_entry = importlib.import_module("vaezoo._C").reparameterize


def fused_reparameterize(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior_mu: torch.Tensor | None,
    prior_logvar: torch.Tensor | None,
    eps: torch.Tensor | None,
    samples: int | None,
    row_start: int = 0,
    row_total: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z, kl, log_q) from one fused kernel; same contract as reference_reparameterize."""
    z, kl, log_q, _rng = _forward_op(mu, logvar, prior_mu, prior_logvar, eps, samples, row_start, row_total)
    return z, kl, log_q
