"""MADE (Germain et al., 2015): a masked network whose output d depends only on inputs before d, plus an
unmasked context; the autoregressive network of the IAF posterior."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from vaezoo.components.layers import activation, positive_ints


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask [out, in]."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.to(self.weight.dtype), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """dim inputs (in their given order) and a context -> `outputs` tensors of dim each, output d a function of
    inputs 1..d-1 and the context only (degrees as in Germain et al.: hidden units cycle through 1..dim-1)."""

    def __init__(self, dim: int, context: int, hidden_dims: Sequence[int], outputs: int, act: str = "elu") -> None:
        super().__init__()
        hidden_dims = positive_ints("hidden_dims", hidden_dims)
        self.dim, self.outputs = dim, outputs
        degrees = [torch.arange(1, dim + 1)]
        degrees += [torch.arange(h) % max(1, dim - 1) + 1 for h in hidden_dims]
        layers: list[nn.Module] = []
        for before, after in zip(degrees[:-1], degrees[1:]):
            layers += [MaskedLinear(after.unsqueeze(1) >= before.unsqueeze(0)), activation(act)]
        self.hidden = nn.ModuleList(layers[0::2])
        self.acts = nn.ModuleList(layers[1::2])
        self.context = nn.Linear(context, hidden_dims[0], bias=False) if context else None
        out_degrees = torch.arange(1, dim + 1).repeat(outputs)
        self.out = MaskedLinear(out_degrees.unsqueeze(1) > degrees[-1].unsqueeze(0))

    def forward(self, z: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        x = self.hidden[0](z)
        if self.context is not None and h is not None:
            x = x + self.context(h)
        x = self.acts[0](x)
        for layer, act in zip(self.hidden[1:], self.acts[1:]):
            x = act(layer(x))
        return tuple(self.out(x).split(self.dim, dim=-1))
