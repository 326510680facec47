"""Continuous location-scale likelihoods: the decoder gives the location; the scale is fixed or learned per pixel."""
from __future__ import annotations

import abc
import math
from typing import Sequence

import torch
from torch import nn

from vaezoo.components.densities import LOG_2PI
from vaezoo.core import Likelihood

LOG_2 = math.log(2.0)


class LocationScale(Likelihood):
    """Independent pixels around the decoder's output, with one scale per pixel (a buffer, or learned)."""

    def __init__(self, input_shape: Sequence[int], scale: float, learn: bool) -> None:
        super().__init__(input_shape)
        if not scale > 0:
            raise ValueError(f"the scale must be positive, got {scale}")
        log_scale = torch.full(self.input_shape, math.log(scale))
        if learn:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        log_scale = self.log_scale.expand_as(params)
        return self.standard_log_density((x - params) * torch.exp(-log_scale), log_scale).flatten(1).sum(1)

    @abc.abstractmethod
    def standard_log_density(self, u: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        """log density of x at u = (x - location) / scale, per pixel (including the -log scale)."""

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params


class Gaussian(LocationScale):
    """Independent Gaussian pixels around the decoder's mean, with a fixed sigma or one learned per pixel."""

    def __init__(self, input_shape: Sequence[int], sigma: float = 0.1, learn_sigma: bool = False) -> None:
        super().__init__(input_shape, sigma, learn_sigma)

    @property
    def log_sigma(self) -> torch.Tensor:
        return self.log_scale

    def standard_log_density(self, u: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        return -(0.5 * u * u + log_scale + 0.5 * LOG_2PI)


class Laplace(LocationScale):
    """Independent Laplace pixels around the decoder's output: an L1 reconstruction; fixed or learned scale."""

    def __init__(self, input_shape: Sequence[int], scale: float = 0.1, learn_scale: bool = False) -> None:
        super().__init__(input_shape, scale, learn_scale)

    def standard_log_density(self, u: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        return -(u.abs() + log_scale + LOG_2)
