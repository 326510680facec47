"""Autograd of the fused operator's backward (vaezoo::reparameterize_bwd), so gradients of gradients are exact.

The operator's first-order autograd is in C++ (csrc/autograd.cpp) and calls reparameterize_bwd through the
dispatcher. Under `create_graph=True` (a gradient penalty) that call is recorded here: its own backward is the
vector-Jacobian product of the reference path's first-order gradients, evaluated with the eps the forward drew
(regenerated from the saved generator state by the backward kernel itself). Without this, the second-order term
through the operator was silently dropped. Only a backward with create_graph=True reaches this registration: a
plain backward calls the kernel below autograd (csrc/autograd.cpp), at no Python cost.
"""
from __future__ import annotations

import torch

from vaezoo.ops.reference import reference_reparameterize

_BWD = "vaezoo::reparameterize_bwd"


def drawn_eps(mu: torch.Tensor, rng: torch.Tensor, samples: int, row_start: int, row_total: int | None) -> torch.Tensor:
    """The eps [samples, *mu.shape] that a forward with this generator state drew, read back through the
    backward kernel: at mu = 0, logvar = 0 the gradient of logvar is 0.5 * eps of the sample given grad_z = 1."""
    zeros = torch.zeros_like(mu)
    draws = []
    for k in range(samples):
        grad_z = torch.zeros((samples, *mu.shape), dtype=mu.dtype, device=mu.device)
        grad_z[k] = 1
        with torch.no_grad():
            grad_logvar = torch.ops.vaezoo.reparameterize_bwd(
                grad_z, None, None, zeros, zeros, None, None, None, rng, row_start, row_total
            )[1]
        draws.append(2 * grad_logvar)
    return torch.stack(draws)


def first_order(grad_z, grad_kl, grad_log_q, mu, logvar, prior_mu, prior_logvar, eps):
    """reparameterize_bwd's (grad_mu, grad_logvar, grad_prior_mu, grad_prior_logvar), from torch ops.

    eps is [K, *mu.shape]; grad_z has z's shape ([K, ...] when the call drew samples, else mu's); an absent
    prior gives empty gradients for it, as the kernel does. torch.func makes the result differentiable in every
    tensor, to any order."""
    samples = None if grad_z.dim() == mu.dim() else grad_z.shape[0]
    noise = eps if samples is not None else eps.reshape(mu.shape)
    if prior_mu is None:
        (z, kl, log_q), vjp = torch.func.vjp(
            lambda m, lv: reference_reparameterize(m, lv, None, None, noise, samples), mu, logvar
        )
    else:
        (z, kl, log_q), vjp = torch.func.vjp(
            lambda m, lv, pm, plv: reference_reparameterize(m, lv, pm, plv, noise, samples),
            mu, logvar, prior_mu, prior_logvar,
        )
    cotangents = (grad_z, zeros_if_none(grad_kl, kl), zeros_if_none(grad_log_q, log_q))
    grads = vjp(cotangents)
    return (*grads, mu.new_empty(0), mu.new_empty(0)) if prior_mu is None else grads


def zeros_if_none(t: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if t is None else t


def spread(given: list[bool], values) -> list:
    """values, one per True in `given`, placed at those positions; None elsewhere."""
    found = iter(values)
    return [next(found) if g else None for g in given]


def _setup_context(ctx, inputs, output) -> None:
    *tensors, rng, row_start, row_total = inputs
    ctx.row_start, ctx.row_total = row_start, row_total
    ctx.given = [t is not None for t in tensors]
    ctx.save_for_backward(*(t for t in tensors if t is not None), rng)


def _backward(ctx, *grad_outputs):
    """The vector-Jacobian product of reparameterize_bwd: the second-order term of a gradient penalty (and,
    under create_graph again, itself differentiable)."""
    *present, rng = ctx.saved_tensors
    tensors = spread(ctx.given, present)  # grad_z, grad_kl, grad_log_q, mu, logvar, prior_mu, prior_logvar, eps
    grad_z, mu, eps = tensors[0], tensors[3], tensors[7]
    samples = grad_z.shape[0] if grad_z.dim() > mu.dim() else 1
    tensors[7] = (drawn_eps(mu, rng, samples, ctx.row_start, ctx.row_total) if eps is None
                  else eps.reshape(samples, *mu.shape))
    positions = [i for i, t in enumerate(tensors) if t is not None]

    def backward_kernel(*args):
        full = list(tensors)
        for i, a in zip(positions, args):
            full[i] = a
        return first_order(*full)

    outputs, vjp = torch.func.vjp(backward_kernel, *(tensors[i] for i in positions))
    grads = spread([t is not None for t in tensors], vjp(tuple(map(zeros_if_none, grad_outputs, outputs))))
    # a drawn eps is no input (no gradient); a given one gets its own shape back
    grads[7] = grads[7].reshape(eps.shape) if eps is not None else None
    return (*grads, None, None, None)


def register() -> None:
    """Register the autograd of reparameterize_bwd (once the extension has defined the op)."""
    torch.library.register_autograd(_BWD, _backward, setup_context=_setup_context)
