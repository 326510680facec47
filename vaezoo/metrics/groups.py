"""Drawing examples that share one factor's value from an observed sample of a factorial dataset: the
interventions of the BetaVAE and FactorVAE scores, read off the data instead of rendered."""
from __future__ import annotations

import numpy as np

from vaezoo.errors import MetricInputError


class FactorGroups:
    """For each factor, the examples grouped by that factor's value (groups of one example are unusable)."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels
        self.order = [np.argsort(labels[:, k], kind="stable") for k in range(labels.shape[1])]
        self.counts = [np.bincount(labels[:, k]) for k in range(labels.shape[1])]
        self.starts = [np.concatenate([[0], np.cumsum(c)[:-1]]) for c in self.counts]
        self.anchors = [np.flatnonzero(self.counts[k][labels[:, k]] >= 2) for k in range(labels.shape[1])]
        for k, anchors in enumerate(self.anchors):
            if len(anchors) == 0:
                raise MetricInputError(f"no two examples share a value of factor {k}: give more examples")

    @property
    def num_factors(self) -> int:
        return self.labels.shape[1]

    def partners(self, factor: np.ndarray, examples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """For example indices [R, S], row i about factor factor[i]: random examples (with replacement) that
        share each one's value of that factor."""
        out = np.empty_like(examples)
        for k in range(self.num_factors):
            rows = factor == k
            if not rows.any():
                continue
            value = self.labels[examples[rows], k]
            offset = (rng.random(value.shape) * self.counts[k][value]).astype(np.int64)
            out[rows] = self.order[k][self.starts[k][value] + offset]
        return out

    def draw(self, factor: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
        """Indices [len(factor), size]: row i holds `size` examples sharing a value of factor factor[i], the
        value a random example's (among those whose value another example shares)."""
        anchors = np.empty(len(factor), dtype=np.int64)
        for k in range(self.num_factors):
            rows = factor == k
            anchors[rows] = self.anchors[k][rng.integers(len(self.anchors[k]), size=int(rows.sum()))]
        return self.partners(factor, np.repeat(anchors[:, None], size, axis=1), rng)
