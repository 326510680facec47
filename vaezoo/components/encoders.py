"""Built-in encoders: networks x -> (mu, logvar)."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from vaezoo.components import layers
from vaezoo.components.layers import halved_sizes, image_shape, mlp, positive_ints
from vaezoo.hookspecs import hookimpl


class GaussianHead(nn.Module):
    """Maps features to the mean and log-variance of q(z|x)."""

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 2 * latent_dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.linear(h).chunk(2, dim=-1)
        return mu, logvar


class MLPEncoder(nn.Module):
    """Fully connected encoder for inputs of any shape (flattened)."""

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int,
        hidden_dims: Sequence[int] = (400, 400),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.body, width = mlp(math.prod(input_shape), hidden_dims, activation)
        self.head = GaussianHead(width, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.body(x.flatten(1)))


class ConvEncoder(nn.Module):
    """Stride-2 convolutions then a dense layer; works for any [C, H, W]."""

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int,
        channels: Sequence[int] = (32, 64),
        hidden: int = 256,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        c, h, w = image_shape("conv encoder", input_shape)
        channels = positive_ints("channels", channels)
        stack: list[nn.Module] = []
        for out in channels:
            stack += [nn.Conv2d(c, out, kernel_size=3, stride=2, padding=1), layers.activation(activation)]
            c = out
        flat = c * halved_sizes(h, len(channels))[-1] * halved_sizes(w, len(channels))[-1]
        self.convs = nn.Sequential(*stack)
        self.dense = nn.Sequential(nn.Linear(flat, hidden), layers.activation(activation))
        self.head = GaussianHead(hidden, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.dense(self.convs(x).flatten(1)))



@hookimpl
def vaezoo_register_encoders(register) -> None:
    register("mlp", MLPEncoder)
    register("conv", ConvEncoder)
