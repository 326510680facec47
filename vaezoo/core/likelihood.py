"""Likelihood: p(x | decoder output), and the kind of data it models."""
from __future__ import annotations

import abc

import torch
from torch import nn


class Likelihood(nn.Module, abc.ABC):
    """p(x | decoder output) for inputs of one shape."""

    #: True when the likelihood is for {0, 1} data: training binarizes the pixels.
    binary_data: bool = False
    #: True when log_prob is a log-probability of discrete values: held-out results then include bits/dim.
    discrete: bool = False

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)

    def param_shape(self) -> tuple[int, ...]:
        """Shape of the decoder output this likelihood reads, per example."""
        return self.input_shape

    @abc.abstractmethod
    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | params) per example, shape [B]."""

    @abc.abstractmethod
    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The expected x under p(x | params): what `decode` shows."""
