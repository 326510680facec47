"""Built-in decoders: networks z -> the likelihood's parameters."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from vaezoo.components import layers
from vaezoo.components.layers import halved_sizes, image_shape, mlp, positive_ints
from vaezoo.hookspecs import hookimpl


class MLPDecoder(nn.Module):
    """Fully connected decoder to outputs of any shape."""

    def __init__(
        self,
        latent_dim: int,
        output_shape: Sequence[int],
        hidden_dims: Sequence[int] = (400, 400),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.output_shape = tuple(output_shape)
        body, width = mlp(latent_dim, hidden_dims, activation)
        self.net = nn.Sequential(body, nn.Linear(width, math.prod(self.output_shape)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.output_shape)


class ConvDecoder(nn.Module):
    """A dense layer then stride-2 transposed convolutions back to exactly [C, H, W]."""

    def __init__(
        self,
        latent_dim: int,
        output_shape: Sequence[int],
        channels: Sequence[int] = (64, 32),
        hidden: int = 256,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        out_c, h, w = image_shape("conv decoder", output_shape)
        channels = positive_ints("channels", channels)
        heights = halved_sizes(h, len(channels))[::-1]
        widths = halved_sizes(w, len(channels))[::-1]
        self.start = (channels[0], heights[0], widths[0])
        self.dense = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            layers.activation(activation),
            nn.Linear(hidden, math.prod(self.start)),
            layers.activation(activation),
        )
        stack: list[nn.Module] = []
        c = channels[0]
        for i, out in enumerate((*channels[1:], channels[-1])):
            padding = (heights[i + 1] - (2 * heights[i] - 1), widths[i + 1] - (2 * widths[i] - 1))
            stack += [
                nn.ConvTranspose2d(c, out, kernel_size=3, stride=2, padding=1, output_padding=padding),
                layers.activation(activation),
            ]
            c = out
        stack.append(nn.Conv2d(c, out_c, kernel_size=3, padding=1))
        self.convs = nn.Sequential(*stack)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.convs(self.dense(z).view(z.shape[0], *self.start))



@hookimpl
def vaezoo_register_decoders(register) -> None:
    register("mlp", MLPDecoder)
    register("conv", ConvDecoder)
