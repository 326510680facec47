"""The Bernoulli likelihood for binary pixels."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vaezoo.core import Likelihood


class Bernoulli(Likelihood):
    """Independent Bernoulli pixels; the decoder gives logits. Training binarizes the data dynamically."""

    binary_data = True
    discrete = True

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -F.binary_cross_entropy_with_logits(params, x, reduction="none").flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)
