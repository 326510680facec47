"""DCI (Eastwood & Williams, 2018): disentanglement, completeness and informativeness, from the importance
of each code dimension to a random forest that predicts each factor."""
from __future__ import annotations

import numpy as np

from vaezoo.metrics.inputs import codes_and_factors, split_halves


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


def importance_matrix(codes: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float]:
    """Random-forest feature importances [D, K] and the mean test accuracy over factors (a fifth held out)."""
    from sklearn.ensemble import (
        RandomForestClassifier,  # imported here: `import vaezoo` stays quick
    )

    train, test = split_halves(len(codes), seed)
    importance = np.zeros((codes.shape[1], labels.shape[1]))
    accuracy = []
    for k in range(labels.shape[1]):
        forest = RandomForestClassifier(
            n_estimators=50, max_features=None, min_samples_leaf=2, random_state=seed, n_jobs=1
        )
        forest.fit(codes[train], labels[train, k])
        importance[:, k] = forest.feature_importances_
        accuracy.append(float(np.mean(forest.predict(codes[test]) == labels[test, k])))
    return importance, float(np.mean(accuracy))


def dci(codes: object, factors: object, *, seed: int = 0) -> dict[str, float]:
    """{"disentanglement", "completeness", "informativeness"}: D and C in [0, 1] (1 is best), and
    informativeness the mean held-out accuracy of predicting each factor from the whole code (chance is
    1 / number of values). codes [N, D], factors [N, K] discrete."""
    z, labels = codes_and_factors(codes, factors, min_examples=20)
    importance, accuracy = importance_matrix(z, labels, seed)
    d, c = disentanglement_completeness(importance)
    return {"disentanglement": d, "completeness": c, "informativeness": accuracy}
