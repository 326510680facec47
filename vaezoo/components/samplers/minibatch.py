"""Fitting a sampler's network by Adam on minibatches of codes: the loop the flow, two-stage and PixelCNN
samplers share."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from vaezoo.core.sampler import Progress


def fit_by_gradient(module: nn.Module, loss_of: Callable[[torch.Tensor], torch.Tensor], data: torch.Tensor,
                    epochs: int, batch_size: int, lr: float, progress: Progress | None = None) -> dict[str, float]:
    """Minimize the mean of `loss_of(batch)` over `epochs` shuffled passes of `data` (the global RNG, seeded by
    the caller, orders them); returns the last epoch's mean loss per code."""
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    module.train()
    mean = float("nan")
    for epoch in range(1, epochs + 1):
        total = 0.0
        for rows in torch.randperm(len(data)).split(batch_size):
            loss = loss_of(data[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
        mean = total / len(data)
        if progress is not None:
            progress(epoch, mean)
    module.eval()
    return {"loss": mean}


class Standardize(nn.Module):
    """The codes' per-dimension mean and standard deviation, learned once from the data and saved with the
    sampler: its networks then see unit-scale inputs whatever the model's code scale (an autoencoder's is free)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def set_from(self, codes: torch.Tensor) -> None:
        self.mean.copy_(codes.mean(0))
        self.std.copy_(codes.std(0).clamp(min=1e-6))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.mean) / self.std

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        return u * self.std + self.mean
