"""DCI (Eastwood & Williams, 2018): disentanglement, completeness and informativeness, from the importance
of each code dimension to a classifier that predicts each factor: gradient-boosted trees as in
disentanglement_lib (the protocol of Locatello et al., 2019), or random forests."""
from __future__ import annotations

import numpy as np

from vaezoo.errors import MetricInputError
from vaezoo.metrics.inputs import train_and_test


def _one_minus_entropy(p: np.ndarray, axis: int) -> np.ndarray:
    """1 - entropy of the distributions along `axis` of non-negative weights p, in base p.shape[axis]."""
    p = p + 1e-11
    p = p / p.sum(axis=axis, keepdims=True)
    return 1.0 + (p * np.log(p)).sum(axis=axis) / np.log(p.shape[axis])


def disentanglement_completeness(importance: np.ndarray) -> tuple[float, float]:
    """D and C of an importance matrix [D codes, K factors]: 1 - entropy of each code's importance over factors
    (weighted by the code's share of importance), and of each factor's importance over codes."""
    importance = np.abs(np.asarray(importance, dtype=np.float64))
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    code_share = weights.sum(1) / weights.sum()
    factor_share = weights.sum(0) / weights.sum()
    d = float(np.sum(_one_minus_entropy(importance, axis=1) * code_share)) if importance.shape[1] > 1 else 1.0
    c = float(np.sum(_one_minus_entropy(importance, axis=0) * factor_share)) if importance.shape[0] > 1 else 1.0
    return d, c


#: The importance models: the name in the output, and how to make one for a seed.
IMPORTANCES = ("gbt", "forest")
IMPORTANCE_NAMES = {"gbt": "gradient-boosted trees", "forest": "random forests"}


def _model(importances: str, rng: np.random.RandomState):
    """disentanglement_lib's GradientBoostingClassifier() (sklearn's defaults: 100 stages of depth-3 trees), or
    the random forest of Eastwood & Williams' own code, drawing from rng."""
    from sklearn.ensemble import (  # imported here: `import vaezoo` stays quick
        GradientBoostingClassifier,
        RandomForestClassifier,
    )

    if importances == "gbt":
        return GradientBoostingClassifier(random_state=rng)
    return RandomForestClassifier(n_estimators=50, max_features=None, min_samples_leaf=2, random_state=rng, n_jobs=1)


def importance_matrix(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], importances: str = "gbt", seed: int = 0
) -> tuple[np.ndarray, float]:
    """Feature importances [D, K] of one classifier per factor fitted on `train` (codes, labels), and its
    mean accuracy over factors on `test`. The classifiers draw in turn from one stream seeded by `seed` (as
    disentanglement_lib's draw from numpy's global one)."""
    (codes, labels), (test_codes, test_labels) = train, test
    rng = np.random.RandomState(seed)
    importance = np.zeros((codes.shape[1], labels.shape[1]))
    accuracy = []
    for k in range(labels.shape[1]):
        model = _model(importances, rng)
        model.fit(codes, labels[:, k])
        importance[:, k] = np.abs(model.feature_importances_)
        accuracy.append(float(np.mean(model.predict(test_codes) == test_labels[:, k])))
    return importance, float(np.mean(accuracy))


def dci(
    codes: object, factors: object, *, seed: int = 0, importances: str = "gbt",
    test_codes: object = None, test_factors: object = None,
) -> dict[str, float | str]:
    """{"disentanglement", "completeness", "informativeness", "importances"}: D and C in [0, 1] (1 is best),
    informativeness the mean test accuracy of predicting each factor from the whole code (chance is 1 / number
    of values), and the name of the model the importances come from.

    importances="gbt" (default) is disentanglement_lib's protocol, the one of Locatello et al. (2019): a
    GradientBoostingClassifier per factor; "forest" uses random forests (Eastwood & Williams' code), which score
    lower on noisy codes. The classifiers are fitted on codes [N, D] and discrete factors [N, K] and scored on
    test_codes / test_factors (disentanglement_lib draws 10,000 and 5,000), or, without them, fitted on a
    seeded 80% of the examples and scored on the rest."""
    if importances not in IMPORTANCES:
        raise MetricInputError(f"dci: importances must be one of {', '.join(IMPORTANCES)}, got {importances!r}")
    train, test = train_and_test(codes, factors, test_codes, test_factors, seed, min_examples=20)
    importance, accuracy = importance_matrix(train, test, importances, seed)
    d, c = disentanglement_completeness(importance)
    return {"disentanglement": d, "completeness": c, "informativeness": accuracy,
            "importances": IMPORTANCE_NAMES[importances]}
