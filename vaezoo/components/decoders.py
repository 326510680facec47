"""Built-in decoders: networks z -> the likelihood's parameters; with `num_classes`, z and a one-hot label."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from vaezoo.components import layers
from vaezoo.components.layers import (
    ResidualBlock,
    grid_sizes,
    image_shape,
    mlp,
    positive_int,
    positive_ints,
    with_label,
)
from vaezoo.registry.hookspecs import Register, hookimpl


def dense_to_grid(in_features: int, hidden: int, grid: tuple[int, int, int], act: str) -> nn.Sequential:
    """Two dense layers from (z, label) to the first feature map's worth of numbers."""
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        layers.activation(act),
        nn.Linear(hidden, math.prod(grid)),
        layers.activation(act),
    )


class MLPDecoder(nn.Module):
    """Fully connected decoder to outputs of any shape."""

    def __init__(
        self,
        latent_dim: int,
        output_shape: Sequence[int],
        hidden_dims: Sequence[int] = (400, 400),
        activation: str = "relu",
        *,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        self.output_shape = tuple(output_shape)
        body, width = mlp(latent_dim + num_classes, hidden_dims, activation)
        self.net = nn.Sequential(body, nn.Linear(width, math.prod(self.output_shape)))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(with_label(z, y)).view(z.shape[0], *self.output_shape)


class ConvDecoder(nn.Module):
    """A dense layer then stride-2 transposed convolutions back to exactly [C, H, W]."""

    def __init__(
        self,
        latent_dim: int,
        output_shape: Sequence[int],
        channels: Sequence[int] = (64, 32),
        hidden: int = 256,
        activation: str = "relu",
        *,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        out_c, h, w = image_shape("conv decoder", output_shape)
        channels = positive_ints("channels", channels)
        sizes = grid_sizes(h, w, len(channels))
        self.start = (channels[0], *sizes[0])
        self.dense = dense_to_grid(latent_dim + num_classes, hidden, self.start, activation)
        stack: list[nn.Module] = []
        c = channels[0]
        for i, out in enumerate((*channels[1:], channels[-1])):
            (h0, w0), (h1, w1) = sizes[i], sizes[i + 1]
            padding = (h1 - (2 * h0 - 1), w1 - (2 * w0 - 1))
            stack += [
                nn.ConvTranspose2d(c, out, kernel_size=3, stride=2, padding=1, output_padding=padding),
                layers.activation(activation),
            ]
            c = out
        stack.append(nn.Conv2d(c, out_c, kernel_size=3, padding=1))
        self.convs = nn.Sequential(*stack)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.convs(self.dense(with_label(z, y)).view(z.shape[0], *self.start))


class ResNetDecoder(nn.Module):
    """A dense layer, then per stage a nearest-neighbour doubling to the exact size and residual blocks."""

    def __init__(
        self,
        latent_dim: int,
        output_shape: Sequence[int],
        channels: Sequence[int] = (64, 32),
        blocks: int = 2,
        hidden: int = 256,
        activation: str = "relu",
        *,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        out_c, h, w = image_shape("resnet decoder", output_shape)
        channels = positive_ints("channels", channels)
        blocks = positive_int("blocks", blocks)
        sizes = grid_sizes(h, w, len(channels))
        self.start = (channels[0], *sizes[0])
        self.dense = dense_to_grid(latent_dim + num_classes, hidden, self.start, activation)
        stack: list[nn.Module] = []
        c = channels[0]
        for size, out in zip(sizes[1:], (*channels[1:], channels[-1])):
            stack.append(nn.Upsample(size=size, mode="nearest"))
            stack.append(ResidualBlock(c, out, act=activation))
            stack += [ResidualBlock(out, out, act=activation) for _ in range(blocks - 1)]
            c = out
        stack.append(nn.Conv2d(c, out_c, kernel_size=3, padding=1))
        self.blocks = nn.Sequential(*stack)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.blocks(self.dense(with_label(z, y)).view(z.shape[0], *self.start))


@hookimpl
def vaezoo_register_decoders(register: Register) -> None:
    register("mlp", MLPDecoder)
    register("conv", ConvDecoder)
    register("resnet", ResNetDecoder)
