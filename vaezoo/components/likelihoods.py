"""Built-in likelihoods p(x | decoder output)."""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.hookspecs import hookimpl
from vaezoo.parts import Likelihood

LOG_2PI = math.log(2.0 * math.pi)


class Bernoulli(Likelihood):
    """Independent Bernoulli pixels; the decoder gives logits. Training binarizes the data dynamically."""

    binary_data = True

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -F.binary_cross_entropy_with_logits(params, x, reduction="none").flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)


class Gaussian(Likelihood):
    """Independent Gaussian pixels around the decoder's mean, with a fixed sigma or one learned per pixel."""

    def __init__(self, input_shape: Sequence[int], sigma: float = 0.1, learn_sigma: bool = False) -> None:
        super().__init__(input_shape)
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        log_sigma = torch.full(self.input_shape, math.log(sigma))
        if learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        log_sigma = self.log_sigma.expand_as(params)
        scaled = (x - params) * torch.exp(-log_sigma)
        return -(0.5 * scaled * scaled + log_sigma + 0.5 * LOG_2PI).flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params


@hookimpl
def vaezoo_register_likelihoods(register) -> None:
    register("bernoulli", Bernoulli)
    register("gaussian", Gaussian)
