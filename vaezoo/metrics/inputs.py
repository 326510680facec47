"""Checking and preparing the arrays that the metrics take: codes [N, D] and factors [N, K]."""
from __future__ import annotations

import numpy as np

from vaezoo.errors import MetricInputError


def as_matrix(name: str, values: object, rows: int | None = None) -> np.ndarray:
    """`values` as a finite float64 [N, D] array, or a MetricInputError naming `name`."""
    array = np.asarray(values)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise MetricInputError(f"{name} must be numeric, got dtype {array.dtype}; encode categories as integers")
    if array.ndim == 1:
        raise MetricInputError(f"{name} must be 2-D [examples, columns], got shape {array.shape}; use {name}[:, None] for one column")
    if array.ndim != 2 or array.shape[1] == 0:
        raise MetricInputError(f"{name} must be 2-D [examples, columns] with at least one column, got shape {array.shape}")
    if rows is not None and len(array) != rows:
        raise MetricInputError(f"{name} has {len(array)} rows but codes have {rows}: give one row per example in both")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise MetricInputError(f"{name} holds NaN or infinite values; drop or fix those rows")
    return array


def codes_and_factors(codes: object, factors: object, min_examples: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(codes float64 [N, D], factor labels int64 [N, K]): each factor's values as 0..n_values-1.

    Factors are discrete (as in every ground-truth dataset); each must take at least two values."""
    z = as_matrix("codes", codes)
    f = as_matrix("factors", factors, rows=len(z))
    if len(z) < min_examples:
        raise MetricInputError(f"codes and factors have {len(z)} rows; this metric needs at least {min_examples} examples")
    labels = np.empty(f.shape, dtype=np.int64)
    for k in range(f.shape[1]):
        values, labels[:, k] = np.unique(f[:, k], return_inverse=True)
        if len(values) < 2:
            raise MetricInputError(f"factor {k} takes one value only; drop that column of factors")
        if len(values) > len(f) // 2:
            raise MetricInputError(
                f"factor {k} takes {len(values)} distinct values in {len(f)} examples: it looks continuous; discretize it first"
            )
    return z, labels


def entropies(labels: np.ndarray) -> np.ndarray:
    """Entropy in nats of each column of integer labels [N, K]."""
    out = np.empty(labels.shape[1])
    for k in range(labels.shape[1]):
        p = np.bincount(labels[:, k]) / len(labels)
        p = p[p > 0]
        out[k] = -(p * np.log(p)).sum()
    return out


def split_halves(n: int, seed: int, train_fraction: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of range(n) into training and test indices."""
    order = np.random.default_rng(seed).permutation(n)
    cut = int(round(train_fraction * n))
    return order[:cut], order[cut:]


def train_and_test(
    codes: object, factors: object, test_codes: object, test_factors: object, seed: int, min_examples: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((codes, labels) to fit on, (codes, labels) to score on): the given test set, or a seeded 80/20 split.

    A given test set's factor values are labelled as the training set's (a value the training set lacks is
    refused: no classifier could predict it)."""
    if (test_codes is None) != (test_factors is None):
        raise MetricInputError("give test_codes and test_factors together, or neither")
    if test_codes is None:
        z, labels = codes_and_factors(codes, factors, min_examples=min_examples)
        train, test = split_halves(len(z), seed)
        return (z[train], labels[train]), (z[test], labels[test])
    z, labels = codes_and_factors(codes, factors, min_examples=min_examples)
    f = as_matrix("factors", factors, rows=len(z))
    tz = as_matrix("test_codes", test_codes)
    tf = as_matrix("test_factors", test_factors, rows=len(tz))
    if len(tz) == 0:
        raise MetricInputError("test_codes has no rows; give at least one test example")
    if tz.shape[1] != z.shape[1] or tf.shape[1] != f.shape[1]:
        raise MetricInputError(
            f"test_codes {tz.shape} and test_factors {tf.shape} must have the columns of codes {z.shape} and "
            f"factors {f.shape}"
        )
    test_labels = np.empty(tf.shape, dtype=np.int64)
    for k in range(f.shape[1]):
        values = np.unique(f[:, k])
        position = np.searchsorted(values, tf[:, k]).clip(0, len(values) - 1)
        if not np.array_equal(values[position], tf[:, k]):
            raise MetricInputError(f"test_factors column {k} holds values that factors never takes; no classifier could predict them")
        test_labels[:, k] = position
    return (z, labels), (tz, test_labels)
