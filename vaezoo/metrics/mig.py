"""Mutual information gap (Chen et al., 2018), with codes discretized into equal-width bins as in
disentanglement_lib."""
from __future__ import annotations

import numpy as np

from vaezoo.errors import MetricInputError
from vaezoo.metrics.inputs import codes_and_factors, entropies


def discretize(codes: np.ndarray, bins: int = 20) -> np.ndarray:
    """Each column of codes [N, D] as the index of its equal-width histogram bin (0..bins-1)."""
    out = np.empty(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram(codes[:, d], bins)[1][:-1]
        out[:, d] = np.digitize(codes[:, d], edges) - 1
    return out


def mutual_information_matrix(codes: np.ndarray, labels: np.ndarray, bins: int = 20) -> np.ndarray:
    """I(code_d; factor_k) in nats, [D, K], from discretized codes and integer factor labels."""
    from sklearn.metrics import (
        mutual_info_score,  # imported here: `import vaezoo` stays quick
    )

    binned = discretize(codes, bins)
    return np.array([[mutual_info_score(labels[:, k], binned[:, d]) for k in range(labels.shape[1])]
                     for d in range(binned.shape[1])])


def mig(codes: object, factors: object, *, bins: int = 20) -> float:
    """Mean over factors of (largest - second largest I(code; factor)) / H(factor); 1 is perfect, 0 is none.

    codes [N, D] (D >= 2), factors [N, K] discrete."""
    z, labels = codes_and_factors(codes, factors)
    if z.shape[1] < 2:
        raise MetricInputError(f"mig needs at least 2 code dimensions, got codes of shape {z.shape}")
    info = np.sort(mutual_information_matrix(z, labels, bins), axis=0)[::-1]
    return float(np.mean((info[0] - info[1]) / entropies(labels)))
