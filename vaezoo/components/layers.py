"""Building blocks shared by the built-in encoders and decoders."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def positive_ints(name: str, values: Sequence[int]) -> tuple[int, ...]:
    """Validate a list of layer sizes."""
    if isinstance(values, int) or not all(isinstance(v, int) and v > 0 for v in values):
        raise ValueError(f"{name} must be a list of positive ints, got {values!r}")
    return tuple(values)


def positive_int(name: str, value: int) -> int:
    """Validate one count (of blocks, layers, components...)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def mlp(in_features: int, hidden_dims: Sequence[int], act: str) -> tuple[nn.Sequential, int]:
    """Linear layers with activations; returns the stack and its output width."""
    layers: list[nn.Module] = []
    width = in_features
    for hidden in positive_ints("hidden_dims", hidden_dims):
        layers += [nn.Linear(width, hidden), activation(act)]
        width = hidden
    return nn.Sequential(*layers), width


def image_shape(part: str, shape: Sequence[int]) -> tuple[int, int, int]:
    """Check that `shape` is [C, H, W] for a convolutional part."""
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"the {part} needs an image shape [C, H, W], got {tuple(shape)}")
    return int(shape[0]), int(shape[1]), int(shape[2])


def halved_sizes(size: int, steps: int) -> list[int]:
    """Spatial sizes after each stride-2, padding-1, kernel-3 convolution: [size, ceil(size/2), ...]."""
    sizes = [size]
    for _ in range(steps):
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes


def grid_sizes(height: int, width: int, steps: int) -> list[tuple[int, int]]:
    """The (H, W) grids a decoder grows through with `steps` doublings to end exactly at (height, width)."""
    return list(zip(halved_sizes(height, steps)[::-1], halved_sizes(width, steps)[::-1]))


def with_label(h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Features with the one-hot label y appended (unchanged when there is no label)."""
    return h if y is None else torch.cat([h, y.to(h.dtype)], dim=-1)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions added to a skip path; stride 2 halves H and W (ceil), like the conv encoder."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, act: str = "relu") -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1),
            activation(act),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        )
        same = stride == 1 and in_channels == out_channels
        self.skip = nn.Identity() if same else nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride)
        self.out = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.skip(x))
