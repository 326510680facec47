"""Separated attribute predictability (Kumar et al., 2018): how much better the best single code dimension
predicts each factor than the second best."""
from __future__ import annotations

import numpy as np

from vaezoo.errors import MetricInputError
from vaezoo.metrics.inputs import codes_and_factors, split_halves


def _r_squared(code: np.ndarray, factor: np.ndarray) -> float:
    """R^2 of the linear fit of factor on one code dimension (0 for a constant code)."""
    cov = np.cov(code, factor, ddof=1)
    return 0.0 if cov[0, 0] <= 1e-12 else float(cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1]))


def _nearest_mean_accuracy(code: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    """Chance-adjusted balanced test accuracy ((accuracy - 1/C) / (1 - 1/C) for C classes, as sklearn's
    balanced_accuracy_score(adjusted=True)) of a one-dimensional nearest-class-mean classifier fitted on `train`."""
    classes = np.unique(labels[train])
    means = np.array([code[train][labels[train] == c].mean() for c in classes])
    predicted = classes[np.abs(code[test, None] - means[None]).argmin(1)]
    truth = labels[test]
    present = np.unique(truth)
    balanced = np.mean([(predicted[truth == c] == c).mean() for c in present])
    return float((balanced - 1 / len(present)) / (1 - 1 / len(present)))


def sap_matrix(codes: np.ndarray, labels: np.ndarray, *, continuous: bool = False, seed: int = 0) -> np.ndarray:
    """Score of each code dimension for each factor, [D, K]: R^2 (continuous) or adjusted balanced accuracy."""
    train, test = split_halves(len(codes), seed)
    score = np.zeros((codes.shape[1], labels.shape[1]))
    for d in range(codes.shape[1]):
        for k in range(labels.shape[1]):
            if continuous:
                score[d, k] = _r_squared(codes[:, d], labels[:, k].astype(np.float64))
            else:
                score[d, k] = _nearest_mean_accuracy(codes[:, d], labels[:, k], train, test)
    return score


def sap(codes: object, factors: object, *, continuous: bool = False, seed: int = 0) -> float:
    """Mean over factors of the gap between the best and second-best code dimension's score.

    Discrete factors (default) are scored by the chance-adjusted balanced accuracy, on a held-out fifth of
    the examples, of a nearest-class-mean classifier on one code dimension (disentanglement_lib's linear SVM
    cannot separate more than two classes along one dimension, and its raw accuracy leaves perfect codes
    short of 1 by the chance level); continuous=True scores by the R^2 of a linear fit, the
    definition shared with disentanglement_lib. codes [N, D] (D >= 2), factors [N, K] discrete."""
    z, labels = codes_and_factors(codes, factors, min_examples=20)
    if z.shape[1] < 2:
        raise MetricInputError(f"sap needs at least 2 code dimensions, got codes of shape {z.shape}")
    if continuous:
        labels = np.asarray(factors, dtype=np.float64)  # R^2 on the factor values themselves
    score = np.sort(sap_matrix(z, labels, continuous=continuous, seed=seed), axis=0)
    return float(np.mean(score[-1] - score[-2]))
