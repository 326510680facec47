"""FactorVAE score (Kim & Mnih, 2018): fix one factor, find the code dimension whose normalized variance is
smallest, and score a majority-vote classifier from that dimension to the factor."""
from __future__ import annotations

import numpy as np

from vaezoo.metrics.groups import FactorGroups
from vaezoo.metrics.inputs import codes_and_factors


def _votes(codes: np.ndarray, scale: np.ndarray, groups: FactorGroups, count: int, batch_size: int,
           rng: np.random.Generator) -> np.ndarray:
    """Votes [K factors, D dims]: for each of `count` batches sharing a random factor's value, the dimension
    of least variance (normalized by its variance over all examples)."""
    factor = rng.integers(groups.num_factors, size=count)
    votes = np.zeros((groups.num_factors, codes.shape[1]), dtype=np.int64)
    for start in range(0, count, 1000):  # in chunks: [chunk, batch, D] stays small
        chunk = factor[start : start + 1000]
        batch = codes[groups.draw(chunk, batch_size, rng)]
        np.add.at(votes, (chunk, np.argmin(batch.var(axis=1, ddof=1) / scale, axis=1)), 1)
    return votes


def factor_vae_score(
    codes: object, factors: object, *, batch_size: int = 64, train_votes: int = 10_000, eval_votes: int = 5_000,
    prune_below: float = 0.05, seed: int = 0,
) -> float:
    """Held-out accuracy of the FactorVAE majority-vote classifier (1 is perfect; chance is about
    1 / number of factors). Code dimensions whose standard deviation over all examples is below
    `prune_below` (collapsed to the prior) take no part, as in disentanglement_lib; codes with no such
    dimension score 0.

    Batches that share a factor's value are drawn from the given examples (see FactorGroups)."""
    z, labels = codes_and_factors(codes, factors)
    variance = z.var(axis=0, ddof=1)
    active = np.sqrt(variance) >= prune_below
    if not active.any():
        return 0.0
    z, variance = z[:, active], variance[active]
    groups = FactorGroups(labels)
    rng = np.random.default_rng(seed)
    train = _votes(z, variance, groups, train_votes, batch_size, rng)
    evaluate = _votes(z, variance, groups, eval_votes, batch_size, rng)
    classifier = train.argmax(axis=0)  # the factor each dimension votes for
    return float(evaluate[classifier, np.arange(z.shape[1])].sum() / evaluate.sum())
