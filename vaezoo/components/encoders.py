"""Built-in encoders: networks x -> the posterior's parameters (for the Gaussian, mu and logvar); with
`num_classes`, x and a one-hot label -> the same."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from vaezoo.components import layers
from vaezoo.components.layers import (
    ResidualBlock,
    halved_sizes,
    image_shape,
    mlp,
    positive_int,
    positive_ints,
    with_label,
)
from vaezoo.registry.hookspecs import Register, hookimpl


class PosteriorHead(nn.Module):
    """Maps features to the posterior's parameters: one tensor per entry of `output_dims` (default: the mean and
    log-variance of a Gaussian over `latent_dim` dimensions)."""

    def __init__(self, in_features: int, latent_dim: int, output_dims: Sequence[int] | None) -> None:
        super().__init__()
        self.sizes = list(positive_ints("output_dims", output_dims or (latent_dim, latent_dim)))
        self.linear = nn.Linear(in_features, sum(self.sizes))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.linear(h).split(self.sizes, dim=-1))


class MLPEncoder(nn.Module):
    """Fully connected encoder for inputs of any shape (flattened; a label is appended to the input)."""

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int,
        hidden_dims: Sequence[int] = (400, 400),
        activation: str = "relu",
        *,
        num_classes: int = 0,
        output_dims: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.body, width = mlp(math.prod(input_shape) + num_classes, hidden_dims, activation)
        self.head = PosteriorHead(width, latent_dim, output_dims)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        return self.head(self.body(with_label(x.flatten(1), y)))


class ConvEncoder(nn.Module):
    """Stride-2 convolutions then a dense layer (a label joins the flattened features); any [C, H, W]."""

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int,
        channels: Sequence[int] = (32, 64),
        hidden: int = 256,
        activation: str = "relu",
        *,
        num_classes: int = 0,
        output_dims: Sequence[int] | None = None,
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
        self.dense = nn.Sequential(nn.Linear(flat + num_classes, hidden), layers.activation(activation))
        self.head = PosteriorHead(hidden, latent_dim, output_dims)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        return self.head(self.dense(with_label(self.convs(x).flatten(1), y)))


class ResNetEncoder(nn.Module):
    """A 3x3 stem, then per stage a stride-2 residual block and `blocks - 1` more, then a dense layer."""

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int,
        channels: Sequence[int] = (32, 64),
        blocks: int = 2,
        hidden: int = 256,
        activation: str = "relu",
        *,
        num_classes: int = 0,
        output_dims: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        c, h, w = image_shape("resnet encoder", input_shape)
        channels = positive_ints("channels", channels)
        blocks = positive_int("blocks", blocks)
        stack: list[nn.Module] = [nn.Conv2d(c, channels[0], kernel_size=3, padding=1), layers.activation(activation)]
        c = channels[0]
        for out in channels:
            stack.append(ResidualBlock(c, out, stride=2, act=activation))
            stack += [ResidualBlock(out, out, act=activation) for _ in range(blocks - 1)]
            c = out
        flat = c * halved_sizes(h, len(channels))[-1] * halved_sizes(w, len(channels))[-1]
        self.blocks = nn.Sequential(*stack)
        self.dense = nn.Sequential(nn.Linear(flat + num_classes, hidden), layers.activation(activation))
        self.head = PosteriorHead(hidden, latent_dim, output_dims)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        return self.head(self.dense(with_label(self.blocks(x).flatten(1), y)))


@hookimpl
def vaezoo_register_encoders(register: Register) -> None:
    register("mlp", MLPEncoder)
    register("conv", ConvEncoder)
    register("resnet", ResNetEncoder)
