"""Separated attribute predictability (Kumar et al., 2018): how much better the best single code dimension
predicts each factor than the second best.

`sap` is the published score, as disentanglement_lib computes it for Locatello et al. (2019): the R^2 of a
linear fit for continuous factors; for discrete ones the test accuracy of a one-dimensional linear classifier
(a threshold) fitted on the training codes. Accuracy is not adjusted for chance, and one threshold cannot
separate three or more classes, so even the factors themselves score well below 1 (0.5 with two-valued
factors). `sap_nearest_mean` is vaezoo's variant for discrete factors, which does reach 1 there."""
from __future__ import annotations

import numpy as np

from vaezoo.errors import MetricInputError
from vaezoo.metrics.inputs import codes_and_factors, train_and_test


def _r_squared(code: np.ndarray, factor: np.ndarray) -> float:
    """R^2 of the linear fit of factor on one code dimension (0 for a constant code)."""
    cov = np.cov(code, factor, ddof=1)
    return 0.0 if cov[0, 0] <= 1e-12 else float(cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1]))


def _threshold_accuracy(code, labels, test_code, test_labels) -> float:
    """Test accuracy of disentanglement_lib's classifier on one code dimension: a linear SVM with C = 0.01
    and balanced class weights (one-vs-rest: thresholds on the line)."""
    from sklearn.svm import LinearSVC  # imported here: `import vaezoo` stays quick

    classifier = LinearSVC(C=0.01, class_weight="balanced")
    classifier.fit(code[:, None], labels)
    return float(np.mean(classifier.predict(test_code[:, None]) == test_labels))


def _nearest_mean_accuracy(code, labels, test_code, test_labels) -> float:
    """Chance-adjusted balanced test accuracy ((accuracy - 1/C) / (1 - 1/C) for C classes, as sklearn's
    balanced_accuracy_score(adjusted=True)) of a one-dimensional nearest-class-mean classifier."""
    classes = np.unique(labels)
    means = np.array([code[labels == c].mean() for c in classes])
    predicted = classes[np.abs(test_code[:, None] - means[None]).argmin(1)]
    present = np.unique(test_labels)
    balanced = np.mean([(predicted[test_labels == c] == c).mean() for c in present])
    return float((balanced - 1 / len(present)) / (1 - 1 / len(present)))


def _gap(score: np.ndarray) -> float:
    """Mean over factors (columns) of the best code dimension's score minus the second best's."""
    ordered = np.sort(score, axis=0)
    return float(np.mean(ordered[-1] - ordered[-2]))


def _discrete_scores(codes, factors, test_codes, test_factors, seed: int, accuracy) -> np.ndarray:
    (z, labels), (tz, test_labels) = train_and_test(codes, factors, test_codes, test_factors, seed, min_examples=20)
    if z.shape[1] < 2:
        raise MetricInputError(f"sap needs at least 2 code dimensions, got codes of shape {z.shape}")
    return np.array([[accuracy(z[:, d], labels[:, k], tz[:, d], test_labels[:, k]) for k in range(labels.shape[1])]
                     for d in range(z.shape[1])])


def sap(
    codes: object, factors: object, *, continuous: bool = False, seed: int = 0,
    test_codes: object = None, test_factors: object = None,
) -> float:
    """The published SAP score, as disentanglement_lib computes it. codes [N, D] (D >= 2), factors [N, K].

    Discrete factors (default): each (code dimension, factor) is scored by the test accuracy of a linear SVM
    on that dimension alone (C = 0.01, balanced class weights), fitted on codes / factors and scored on
    test_codes / test_factors (disentanglement_lib draws 10,000 and 5,000), or, without them, fitted on a
    seeded 80% and scored on the rest. continuous=True: the R^2 of a linear fit of the factor's values on each
    dimension, over all of codes / factors (test_codes / test_factors are not used). The score is the mean over factors of the best dimension's score minus
    the second best's."""
    if continuous:
        z, _ = codes_and_factors(codes, factors, min_examples=20)
        if z.shape[1] < 2:
            raise MetricInputError(f"sap needs at least 2 code dimensions, got codes of shape {z.shape}")
        values = np.asarray(factors, dtype=np.float64)  # R^2 on the factor values themselves
        return _gap(np.array([[_r_squared(z[:, d], values[:, k]) for k in range(values.shape[1])]
                              for d in range(z.shape[1])]))
    return _gap(_discrete_scores(codes, factors, test_codes, test_factors, seed, _threshold_accuracy))


def sap_nearest_mean(
    codes: object, factors: object, *, seed: int = 0, test_codes: object = None, test_factors: object = None
) -> float:
    """vaezoo's SAP variant for discrete factors (not the published score: do not set it beside the
    literature's SAP): each (code dimension, factor) is scored by the chance-adjusted balanced test accuracy
    of a one-dimensional nearest-class-mean classifier, so codes equal to the factors score 1 and noise 0.
    Train and test as in `sap`."""
    return _gap(_discrete_scores(codes, factors, test_codes, test_factors, seed, _nearest_mean_accuracy))
