"""Measuring a trained VAE: held-out ELBO and its terms, importance-weighted NLL and active units, in nats."""
from __future__ import annotations

import itertools
import math
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from tqdm import tqdm

from vaezoo.data import batches
from vaezoo.distributed import World
from vaezoo.model import VAE
from vaezoo.ops import noise_shard


def bits_per_dim(nats_per_example: float, input_shape: Sequence[int]) -> float:
    """A negative log-likelihood in nats per example, as bits per dimension (pixel and channel)."""
    return nats_per_example / (math.prod(input_shape) * math.log(2.0))


@contextmanager
def _evaluating(model: VAE, seed: int) -> Iterator[torch.device]:
    """Eval mode and a fixed seed; the training mode and the global RNG are restored afterwards, so evaluating
    does not change what training draws next."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            torch.manual_seed(seed)
            yield device
    finally:
        model.train(was_training)


def _labelled(
    x: torch.Tensor, y: torch.Tensor | None, batch_size: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """(x, y) batches in order, on `device`; y stays None for an unconditional model."""
    labels = batches(y, batch_size, shuffle=False) if y is not None else itertools.repeat(None)
    for xb, yb in zip(batches(x, batch_size, shuffle=False), labels):
        yield xb.to(device), (None if yb is None else yb.to(device))


def elbo(
    model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 1000, seed: int = 0,
    world: World | None = None,
) -> dict[str, float]:
    """Mean one-sample ELBO, reconstruction term and KL over x (labels y for a conditional model), with z drawn
    from a fixed seed; for a discrete likelihood also the negative ELBO in bits per dimension.

    With a world of several ranks, each rank evaluates its shard of every batch (drawing that shard's rows of
    the batch's noise) and the sums are reduced: every rank gets what one process would compute."""
    world = world or World()
    with _evaluating(model, seed) as device:
        totals = torch.zeros(3, dtype=torch.float64, device=device)  # elbo, recon, kl
        for xb, yb in _labelled(x, y, batch_size, device):
            start, stop = world.shard(len(xb))
            if start == stop:
                continue
            with noise_shard(start, len(xb)):
                out = model.elbo_terms(xb[start:stop], None if yb is None else yb[start:stop])
            totals += torch.stack([out.elbo.sum(), out.recon.sum(), out.kl.sum()]).double()
        world.sum(totals)
    result = dict(zip(("elbo", "recon", "kl"), (totals / len(x)).tolist()))
    if model.likelihood.discrete:
        result["bits_per_dim"] = bits_per_dim(-result["elbo"], model.input_shape)
    return result


def importance_weighted_nll(
    model: VAE,
    x: torch.Tensor,
    samples: int = 1000,
    batch_size: int = 10,
    y: torch.Tensor | None = None,
    seed: int = 0,
    progress: bool = False,
) -> float:
    """-log p(x) estimated with `samples` importance samples from q(z|x) (Burda et al., 2016), mean over x in
    nats; `batch_size` examples (each with all its samples) go through the model at a time."""
    total = 0.0
    with _evaluating(model, seed) as device:
        bar = tqdm(_labelled(x, y, batch_size, device), total=math.ceil(len(x) / batch_size), disable=not progress,
                   desc=f"IW-NLL, K={samples}", leave=False)
        for xb, yb in bar:
            total -= model.iw_terms(xb, samples, yb).terms["iw_bound"].sum().item()
    return total / len(x)


def active_units(
    model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, threshold: float = 0.01, batch_size: int = 1000
) -> int:
    """Latent dimensions whose posterior mean varies with x: Cov_x(E[z|x]) > threshold (Burda et al., 2016)."""
    with _evaluating(model, 0) as device:
        means = torch.cat([model.posterior_mean(xb, yb) for xb, yb in _labelled(x, y, batch_size, device)])
    return int((means.var(dim=0) > threshold).sum())


def kl_per_dimension(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 1000) -> list[float]:
    """Mean KL(q(z_d|x) || p(z_d)) of each latent dimension over x (Monte-Carlo where the prior needs it)."""
    total = None
    with _evaluating(model, 0) as device:
        for xb, yb in _labelled(x, y, batch_size, device):
            per_dim = model.elbo_terms(xb, yb, kl_per_dim=True).terms["kl_per_dim"].sum(0)
            total = per_dim if total is None else total + per_dim
    return (total / len(x)).tolist()


def mutual_information(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, chunk: int = 100) -> float:
    """I(x; z) under q: E_x E_q(z|x)[log q(z|x) - log q(z)], with the aggregate posterior q(z) the mixture of
    the posteriors of every example in x (Hoffman & Johnson, 2016; the estimator of He et al., 2019)."""
    with _evaluating(model, 0) as device:
        posteriors = [model.encode(xb, yb) for xb, yb in _labelled(x, y, 1000, device)]
        mu = torch.cat([m for m, _ in posteriors]).double()
        logvar = torch.cat([lv for _, lv in posteriors]).double()
        q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
        z = q.sample()
        log_q_own = q.log_prob(z).sum(-1)
        log_q_aggregate = torch.cat([
            torch.logsumexp(
                torch.distributions.Normal(mu[None], q.scale[None]).log_prob(z[i : i + chunk, None]).sum(-1), dim=1
            )
            for i in range(0, len(z), chunk)
        ]) - math.log(len(z))
    return float((log_q_own - log_q_aggregate).mean())
