"""Building blocks shared by the built-in encoders and decoders."""
from __future__ import annotations

import math
from typing import Sequence

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
