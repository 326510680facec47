"""Measuring a trained VAE: held-out ELBO and its terms, importance-weighted NLL and active units, in nats.

Each metric is computed where the model's parts define it; `summary` reports the others as not available,
with the reason (METRIC_NEEDS names the posterior feature each one needs)."""
from __future__ import annotations

import itertools
import math
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
from tqdm import tqdm

from vaezoo.core import VAE
from vaezoo.core.estimators import elbo_terms, iw_terms
from vaezoo.data.datasets import batches
from vaezoo.errors import NonFiniteError
from vaezoo.data.held_out import HeldOut
from vaezoo.ops import noise_shard
from vaezoo.runtime.distributed import World


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
    if isinstance(x, HeldOut):
        x, y = x.x, x.y
    world = world or World()
    with _evaluating(model, seed) as device:
        totals = torch.zeros(3, dtype=torch.float64, device=device)  # elbo, recon, kl
        for xb, yb in _labelled(x, y, batch_size, device):
            start, stop = world.shard(len(xb))
            if start == stop:
                continue
            with noise_shard(start, len(xb)):
                out = elbo_terms(model, xb[start:stop], None if yb is None else yb[start:stop])
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
            total -= iw_terms(model, xb, samples, yb).terms["iw_bound"].sum().item()
    return total / len(x)


def active_units(
    model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, threshold: float = 0.01, batch_size: int = 1000
) -> int:
    """Latent dimensions whose posterior mean varies with x: Cov_x(E[z|x]) > threshold (Burda et al., 2016)."""
    with _evaluating(model, 0) as device:
        means = torch.cat([model.posterior_mean(xb, yb) for xb, yb in _labelled(x, y, batch_size, device)])
    bad = int((~torch.isfinite(means).all(dim=1)).sum())
    if bad:  # NaN compares false: they would count as inactive
        raise NonFiniteError(f"the posterior means of {bad} of {len(means)} examples are NaN or infinite, so active "
                             "units are undefined: the model's encoder overflows (a diverged or changed run)")
    return int((means.var(dim=0) > threshold).sum())


def kl_per_dimension(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 1000) -> list[float]:
    """Mean KL(q(z_d|x) || p(z_d)) of each latent dimension over x (Monte-Carlo where the prior needs it)."""
    model.posterior.require("kl_per_dim", model.prior)
    total = None
    with _evaluating(model, 0) as device:
        for xb, yb in _labelled(x, y, batch_size, device):
            per_dim = elbo_terms(model, xb, yb, kl_per_dim=True).terms["kl_per_dim"].sum(0)
            total = per_dim if total is None else total + per_dim
    return (total / len(x)).tolist()


def mutual_information(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, chunk: int = 100) -> float:
    """I(x; z) under q: E_x E_q(z|x)[log q(z|x) - log q(z)], with the aggregate posterior q(z) the mixture of
    the posteriors of every example in x (Hoffman & Johnson, 2016; the estimator of He et al., 2019)."""
    posterior = model.posterior
    posterior.require("density", model.prior)
    with _evaluating(model, 0) as device:
        encoded = [model.encode(xb, yb) for xb, yb in _labelled(x, y, 1000, device)]
        params = tuple(torch.cat(p) for p in zip(*encoded))
        z = posterior.draw(params, model.prior).z.double()
        params = tuple(p.double() for p in params)
        log_q_own = posterior.log_density(z, params).sum(-1)
        broadcast = tuple(p.unsqueeze(0) for p in params)
        log_q_aggregate = torch.cat([
            torch.logsumexp(posterior.log_density(z[i : i + chunk, None], broadcast).sum(-1), dim=1)
            for i in range(0, len(z), chunk)
        ]) - math.log(len(z))
    return float((log_q_own - log_q_aggregate).mean())


#: The posterior feature each optional metric of `summary` needs.
METRIC_NEEDS = {"nll": "samples", "mutual_information": "density", "kl_per_dim": "kl_per_dim"}


def summary(
    model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, nll_samples: int = 1000, progress: bool = False,
    nll_examples: int | None = None, optional: Sequence[str] = tuple(METRIC_NEEDS),
) -> dict[str, Any]:
    """Every held-out metric defined for this model among the `optional` ones of METRIC_NEEDS (all by default;
    the ELBO and active units always); `unavailable` maps each metric of METRIC_NEEDS it does not define to why.
    The IW-NLL is estimated on the first `nll_examples` examples when given (it costs K decoder passes each)."""
    unknown = sorted(set(optional) - set(METRIC_NEEDS))
    if unknown:
        raise ValueError(f"unknown optional metrics {unknown}; they are {', '.join(METRIC_NEEDS)}")
    terms = elbo(model, x, y)
    result: dict[str, Any] = {"examples": len(x), **{k: terms[k] for k in ("elbo", "recon", "kl")}}
    result["latent_dim"] = model.latent_dim
    result["active_units"] = active_units(model, x, y)
    unavailable = {
        metric: reason for metric, feature in METRIC_NEEDS.items()
        if (reason := model.posterior.why_not(feature, model.prior)) is not None
    }
    wanted = set(optional) - set(unavailable)
    if "nll" in wanted:
        n = len(x) if nll_examples is None else min(nll_examples, len(x))
        result["nll"] = importance_weighted_nll(model, x[:n], nll_samples, y=None if y is None else y[:n],
                                                progress=progress)
        result["nll_samples"], result["nll_examples"] = nll_samples, n
        if model.likelihood.discrete:
            result["bits_per_dim"] = bits_per_dim(result["nll"], model.input_shape)
    if "mutual_information" in wanted:
        result["mutual_information"] = mutual_information(model, x, y)
    if "kl_per_dim" in wanted:
        result["kl_per_dim"] = kl_per_dimension(model, x, y)
    result["unavailable"] = unavailable
    return result
