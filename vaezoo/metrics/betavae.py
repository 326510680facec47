"""BetaVAE score (Higgins et al., 2017): the accuracy of a linear classifier that tells, from the mean
absolute code difference over pairs sharing one factor's value, which factor they share."""
from __future__ import annotations

import numpy as np

from vaezoo.metrics.groups import FactorGroups
from vaezoo.metrics.inputs import codes_and_factors


def _points(codes: np.ndarray, groups: FactorGroups, count: int, batch_size: int, rng: np.random.Generator):
    """`count` (mean |z1 - z2| over batch_size pairs sharing factor k, k) points, k uniform."""
    factor = rng.integers(groups.num_factors, size=count)
    first = groups.draw(factor, batch_size, rng)
    second = groups.partners(factor, first, rng)
    return np.abs(codes[first] - codes[second]).mean(axis=1), factor


def beta_vae_score(
    codes: object, factors: object, *, batch_size: int = 64, train_points: int = 10_000, eval_points: int = 5_000,
    seed: int = 0,
) -> float:
    """Held-out accuracy of the BetaVAE classifier (1 is perfect; chance is 1 / number of factors).

    Pairs that share a factor's value are drawn from the given examples (see FactorGroups), so codes and
    factors [N, K] should be a random sample of a factorial dataset, as a held-out set is."""
    from sklearn.linear_model import (
        LogisticRegression,  # imported here: `import vaezoo` stays quick
    )

    z, labels = codes_and_factors(codes, factors)
    groups = FactorGroups(labels)
    rng = np.random.default_rng(seed)
    x_train, y_train = _points(z, groups, train_points, batch_size, rng)
    x_eval, y_eval = _points(z, groups, eval_points, batch_size, rng)
    classifier = LogisticRegression(max_iter=2000, random_state=seed).fit(x_train, y_train)
    return float(np.mean(classifier.predict(x_eval) == y_eval))
