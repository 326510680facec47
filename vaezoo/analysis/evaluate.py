"""Measuring a trained VAE: held-out ELBO and its terms, importance-weighted NLL and active units, in nats.

Each metric is computed where the model's parts define it; `summary` reports the others as not available,
with the reason (METRIC_NEEDS names the posterior feature each one needs)."""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
from tqdm import tqdm

from vaezoo.core import VAE
from vaezoo.core.estimators import elbo_terms, iw_terms
from vaezoo.data.held_out import HeldOut
from vaezoo.errors import NonFiniteError
from vaezoo.ops import noise_shard
from vaezoo.runtime.distributed import World


def bits_per_dim(nats_per_example: float, input_shape: Sequence[int]) -> float:
    """A negative log-likelihood in nats per example, as bits per dimension (pixel and channel)."""
    return nats_per_example / (math.prod(input_shape) * math.log(2.0))


@contextmanager
def evaluating(model: VAE, seed: int) -> Iterator[torch.device]:
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


def elbo(
    model: VAE, held_out: HeldOut, batch_size: int | None = None, seed: int = 0, world: World | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Mean one-sample ELBO, reconstruction term and KL over the held-out set, with z drawn from a fixed seed;
    for a discrete likelihood also the negative ELBO in bits per dimension.

    With a world of several ranks, each rank reads and evaluates its shard of every batch (drawing that shard's
    rows of the batch's noise) and the sums are reduced: every rank gets what one process would compute.
    `batch_size` defaults to the held-out set's batch_rows(1000), as every metric here."""
    world = world or World()
    batch_size = batch_size or held_out.batch_rows(1000)
    with evaluating(model, seed) as device:
        totals = torch.zeros(3, dtype=torch.float64, device=device)  # elbo, recon, kl
        for xb, yb, rows in held_out.batches(batch_size, device, world, progress="ELBO" if progress else None):
            start, stop = world.shard(rows)
            if start == stop:
                continue
            with noise_shard(start, rows):
                out = elbo_terms(model, xb, yb)
            totals += torch.stack([out.elbo.sum(), out.recon.sum(), out.kl.sum()]).double()
        world.sum(totals)
    result = dict(zip(("elbo", "recon", "kl"), (totals / len(held_out)).tolist()))
    if model.likelihood.discrete:
        result["bits_per_dim"] = bits_per_dim(-result["elbo"], model.input_shape)
    return result


#: The most importance samples per example vaezoo estimates with (the literature uses K = 5000).
MAX_NLL_SAMPLES = 1_000_000


def check_nll_samples(samples: int) -> None:
    """ValueError unless 1 <= samples <= MAX_NLL_SAMPLES (checked before anything is allocated)."""
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= MAX_NLL_SAMPLES:
        raise ValueError(f"the number of importance samples must be a whole number in 1..{MAX_NLL_SAMPLES:,} "
                         f"(5,000 is the published protocol), got {samples!r}")


def _iw_bound(model: VAE, x: torch.Tensor, y: torch.Tensor | None, samples: int, pass_rows: int) -> torch.Tensor:
    """The K-sample importance-weighted bound per example, in passes of at most `pass_rows` (example, sample)
    pairs: the passes' bounds are combined exactly (log of the mean of all K weights)."""
    per_pass = max(1, pass_rows // len(x))
    if samples <= per_pass:
        return iw_terms(model, x, samples, y).terms["iw_bound"]
    parts = []
    for done in range(0, samples, per_pass):
        k = min(per_pass, samples - done)
        parts.append(iw_terms(model, x, k, y).terms["iw_bound"] + math.log(k))  # log sum of this pass's weights
    return torch.logsumexp(torch.stack(parts), dim=0) - math.log(samples)


def importance_weighted_nll(
    model: VAE, held_out: HeldOut, samples: int = 1000, batch_size: int = 10, seed: int = 0, progress: bool = False,
) -> float:
    """-log p(x) estimated with `samples` importance samples from q(z|x) (Burda et al., 2016), mean over the
    held-out set in nats; `batch_size` examples go through the model at a time, fewer when their K samples
    would hold more than the held-out set's BATCH_ELEMENTS (K = 100 of 10 images of 28x28 in one pass, K = 1000
    of 64x64 in 6 passes), so memory does not grow with K or the image size."""
    check_nll_samples(samples)
    pass_rows = held_out.batch_rows()
    batch_size = max(1, min(batch_size, pass_rows // samples))
    total = 0.0
    with evaluating(model, seed) as device:
        for xb, yb, _ in held_out.batches(batch_size, device, progress=f"IW-NLL, K={samples}" if progress else None):
            total -= _iw_bound(model, xb, yb, samples, pass_rows).sum().item()
    return total / len(held_out)


def active_units(
    model: VAE, held_out: HeldOut, threshold: float = 0.01, batch_size: int | None = None, progress: bool = False
) -> int:
    """Latent dimensions whose posterior mean varies with x: Cov_x(E[z|x]) > threshold (Burda et al., 2016).
    The variance is accumulated batch by batch (Chan et al.'s pairwise update), so no [N, D] matrix is kept."""
    count, mean, m2 = 0, None, None
    batch_size = batch_size or held_out.batch_rows(1000)
    with evaluating(model, 0) as device:
        for xb, yb, _ in held_out.batches(batch_size, device, progress="active units" if progress else None):
            means = model.posterior_mean(xb, yb).double()
            if not torch.isfinite(means).all():  # NaN compares false: such examples would count as inactive
                raise NonFiniteError("the posterior means of some held-out examples are NaN or infinite, so active "
                                     "units are undefined: the model's encoder overflows (a diverged or changed run)")
            n, batch_mean = len(means), means.mean(0)
            batch_m2 = ((means - batch_mean) ** 2).sum(0)
            if mean is None:
                count, mean, m2 = n, batch_mean, batch_m2
                continue
            delta = batch_mean - mean
            total = count + n
            mean = mean + delta * n / total
            m2 = m2 + batch_m2 + delta**2 * count * n / total
            count = total
    variance = m2 / (count - 1)  # torch.var's unbiased estimate
    return int((variance > threshold).sum())


def kl_per_dimension(
    model: VAE, held_out: HeldOut, batch_size: int | None = None, progress: bool = False
) -> list[float]:
    """Mean KL(q(z_d|x) || p(z_d)) of each latent dimension over the held-out set (Monte-Carlo where the prior
    needs it)."""
    model.posterior.require("kl_per_dim", model.prior)
    batch_size = batch_size or held_out.batch_rows(1000)
    total = None
    with evaluating(model, 0) as device:
        for xb, yb, _ in held_out.batches(batch_size, device, progress="KL per dimension" if progress else None):
            per_dim = elbo_terms(model, xb, yb, kl_per_dim=True).terms["kl_per_dim"].sum(0)
            total = per_dim if total is None else total + per_dim
    return (total / len(held_out)).tolist()


def mutual_information(model: VAE, held_out: HeldOut, chunk: int = 100, progress: bool = False) -> float:
    """I(x; z) under q: E_x E_q(z|x)[log q(z|x) - log q(z)], with the aggregate posterior q(z) the mixture of
    the posteriors of every held-out example (Hoffman & Johnson, 2016; the estimator of He et al., 2019). The
    aggregate needs every example's posterior parameters at once (N x the encoder's output); the images are
    read in batches."""
    posterior = model.posterior
    posterior.require("density", model.prior)
    with evaluating(model, 0) as device:
        encoded = [model.encode(xb, yb) for xb, yb, _ in held_out.batches(
            held_out.batch_rows(1000), device, progress="I(x;z): encoding" if progress else None)]
        params = tuple(torch.cat(p) for p in zip(*encoded))
        z = posterior.draw(params, model.prior).z.double()
        params = tuple(p.double() for p in params)
        log_q_own = posterior.log_density(z, params).sum(-1)
        broadcast = tuple(p.unsqueeze(0) for p in params)
        starts = tqdm(range(0, len(z), chunk), desc="I(x;z): aggregate posterior", leave=False, delay=2.0,
                      disable=not progress)
        log_q_aggregate = torch.cat([
            torch.logsumexp(posterior.log_density(z[i : i + chunk, None], broadcast).sum(-1), dim=1) for i in starts
        ]) - math.log(len(z))
    return float((log_q_own - log_q_aggregate).mean())


def why_no_bits_per_dim(model: VAE) -> str | None:
    """Why the model's held-out results have no bits per dimension (None when they do)."""
    if model.likelihood.discrete:
        return None
    return (f"the {type(model.likelihood).__name__} likelihood is a density of continuous values, not a "
            "probability of discrete ones; bits per dimension need a discrete likelihood (e.g. bernoulli, "
            "discretized-logistic)")


#: The posterior feature each optional metric of `summary` needs.
METRIC_NEEDS = {"nll": "samples", "mutual_information": "density", "kl_per_dim": "kl_per_dim"}


def summary(
    model: VAE, held_out: HeldOut, nll_samples: int = 1000, progress: bool = False,
    nll_examples: int | None = None, optional: Sequence[str] = tuple(METRIC_NEEDS),
) -> dict[str, Any]:
    """Every held-out metric defined for this model among the `optional` ones of METRIC_NEEDS (all by default;
    the ELBO and active units always); `unavailable` maps each metric it does not define to why (bits per
    dimension included). The IW-NLL is estimated on the first `nll_examples` examples when given (it costs K
    decoder passes each). `progress` shows a bar for each pass over the held-out set."""
    unknown = sorted(set(optional) - set(METRIC_NEEDS))
    if unknown:
        raise ValueError(f"unknown optional metrics {unknown}; they are {', '.join(METRIC_NEEDS)}")
    check_nll_samples(nll_samples)
    terms = elbo(model, held_out, progress=progress)
    result: dict[str, Any] = {"examples": len(held_out), **{k: terms[k] for k in ("elbo", "recon", "kl")}}
    result["latent_dim"] = model.latent_dim
    result["active_units"] = active_units(model, held_out, progress=progress)
    unavailable = {
        metric: reason for metric, feature in METRIC_NEEDS.items()
        if (reason := model.posterior.why_not(feature, model.prior)) is not None
    }
    wanted = set(optional) - set(unavailable)
    if "nll" in wanted:
        first = held_out if nll_examples is None else held_out.head(nll_examples)
        result["nll"] = importance_weighted_nll(model, first, nll_samples, progress=progress)
        result["nll_samples"], result["nll_examples"] = nll_samples, len(first)
        if model.likelihood.discrete:
            result["bits_per_dim"] = bits_per_dim(result["nll"], model.input_shape)
    if (reason := why_no_bits_per_dim(model)) is not None:
        unavailable["bits_per_dim"] = reason
    if "mutual_information" in wanted:
        result["mutual_information"] = mutual_information(model, held_out, progress=progress)
    if "kl_per_dim" in wanted:
        result["kl_per_dim"] = kl_per_dimension(model, held_out, progress=progress)
    result["unavailable"] = unavailable
    return result
